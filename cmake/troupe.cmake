# Shared build settings: one INTERFACE target carries the language standard and
# warnings; troupe_component() declares a folder's library and its unit tests.

add_library(troupe_options INTERFACE)
target_compile_features(troupe_options INTERFACE cxx_std_20)
target_compile_options(troupe_options INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
  -Wunused -Woverloaded-virtual -Wimplicit-fallthrough)
target_include_directories(troupe_options INTERFACE
  ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR})
# Boost.Asio defaults that keep compile time and binary size down.
target_compile_definitions(troupe_options INTERFACE
  BOOST_ASIO_NO_DEPRECATED BOOST_ASIO_DISABLE_BOOST_REGEX)

# Catch2 main compiled once, shared by every unit-test binary.
if(TROUPE_BUILD_TESTS)
  add_library(troupe_catch_main STATIC ${PROJECT_SOURCE_DIR}/tests/catch_main.cpp)
  target_link_libraries(troupe_catch_main PUBLIC Catch2::Catch2 troupe_options)
endif()

# troupe_component(NAME SOURCES ... [DEPS ...] [TESTS ...])
#   Builds static library troupe_NAME from SOURCES, linked to DEPS, and one test
#   binary NAME_tests from TESTS registered with ctest under the label "unit".
function(troupe_component name)
  cmake_parse_arguments(arg "" "" "SOURCES;DEPS;TESTS" ${ARGN})
  add_library(troupe_${name} STATIC ${arg_SOURCES})
  target_link_libraries(troupe_${name} PUBLIC troupe_options ${arg_DEPS})
  if(arg_TESTS AND TROUPE_BUILD_TESTS)
    add_executable(${name}_tests ${arg_TESTS})
    target_link_libraries(${name}_tests PRIVATE troupe_${name} troupe_catch_main)
    add_test(NAME ${name}_tests COMMAND ${name}_tests)
    set_tests_properties(${name}_tests PROPERTIES LABELS unit TIMEOUT 120)
  endif()
endfunction()

# troupe_package(TARGET SOURCES ... MANIFEST file [DIR dir] [DEPS ...])
#   Builds an actor package as a directory package: DIR (default
#   ${CMAKE_CURRENT_BINARY_DIR}/TARGET) receives lib<TARGET>.so and
#   manifest.yaml. The library's RUNPATH is $ORIGIN:$ORIGIN/lib, where a
#   package bundles its private libraries. Hidden visibility keeps everything
#   but the entry point (marked visible by TROUPE_PACKAGE) out of the dynamic
#   symbol table, where it could clash with another package's code.
function(troupe_package target)
  cmake_parse_arguments(arg "" "MANIFEST;DIR" "SOURCES;DEPS" ${ARGN})
  if(NOT arg_DIR)
    set(arg_DIR ${CMAKE_CURRENT_BINARY_DIR}/${target})
  endif()
  add_library(${target} MODULE ${arg_SOURCES})
  target_link_libraries(${target} PRIVATE troupe_options nlohmann_json::nlohmann_json ${arg_DEPS})
  target_compile_options(${target} PRIVATE -fvisibility=hidden -fvisibility-inlines-hidden)
  # A package is loaded from wherever it was unpacked, bundling its private
  # libraries beside it or under lib/: it must find them relative to itself
  # ($ORIGIN), and never through a build-tree RPATH, which would silently load
  # the build machine's copy instead of the bundled one (see examples/conflict).
  # --enable-new-dtags writes RUNPATH, which covers the library's own
  # dependencies only, rather than RPATH, which would also steer what those
  # dependencies load.
  set_target_properties(${target} PROPERTIES PREFIX lib SUFFIX .so
                        LIBRARY_OUTPUT_DIRECTORY ${arg_DIR}
                        BUILD_WITH_INSTALL_RPATH ON INSTALL_RPATH "$ORIGIN;$ORIGIN/lib")
  target_link_options(${target} PRIVATE -Wl,--enable-new-dtags)
  add_custom_command(TARGET ${target} POST_BUILD
    COMMAND ${CMAKE_COMMAND} -E copy_if_different ${arg_MANIFEST} ${arg_DIR}/manifest.yaml
    COMMENT "Assembling package ${arg_DIR}")
endfunction()
