# Entry points for operators and CI. Each target installs what is missing
# (scripts/setup.sh, Debian packages), configures and builds first.
BUILD ?= build
JOBS  ?= 2

.PHONY: all setup configure build test unit integration demo bench fuzz clean format format-check deb

all: build

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo > /dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

unit: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) -L unit

integration: build
	cd $(BUILD) && ctest --output-on-failure -L integration

# The Debian package troupe_VERSION_ARCH.deb in $(BUILD)/deb (cmake/debian.cmake).
deb: build
	@cd $(BUILD) && cpack -G DEB
	@ls $(BUILD)/deb/*.deb

demo: build
	@bash examples/demo.sh $(BUILD)

bench: build
	@$(BUILD)/bin/troupe-bench --out $(BUILD)/bench-results.json

# libFuzzer targets (fuzz/, docs/SECURITY.md): clang 14 in build-fuzz, each
# target FUZZ_SECONDS (default 30) on a copy of its corpus; fails on a crash.
fuzz: setup
	@JOBS=$(JOBS) bash scripts/fuzz.sh

clean:
	rm -rf $(BUILD)

# The tree keeps to .clang-format (clang-format 14, Debian's); CI checks it.
format:
	@git ls-files '*.cpp' '*.hpp' '*.h' | xargs clang-format -i

format-check:
	@git ls-files '*.cpp' '*.hpp' '*.h' | xargs clang-format --dry-run --Werror
