# Building and signing actor packages with CMake: troupe_package() and
# troupe_signed_package(). The same file serves the source tree (included by
# cmake/troupe.cmake) and an outside project, where find_package(troupe)
# includes the installed copy from <prefix>/lib/cmake/troupe/. It needs two
# targets, which both places define:
#   troupe::sdk     the header-only actor SDK (include/troupe/, nlohmann-json, C++20)
#   troupe::troupe  the `troupe` program, whose `pack` signs the archives
# Optional settings, read when a function is called:
#   TROUPE_SIGNING_KEY         default KEY of troupe_signed_package(): a private
#                              key made by `troupe keygen NAME` (NAME.key)
#   TROUPE_SIGNING_KEY_TARGET  a target that makes that key (the source tree's
#                              development key); packing waits for it
#   TROUPE_PACKAGE_OUT         default OUT directory of the archives
#                              (default: the calling directory's binary dir)
#   TROUPE_PACKAGE_LINK        more libraries every package links (the source
#                              tree's warnings and include paths)
include_guard(GLOBAL)

# troupe_package(TARGET SOURCES ... MANIFEST file [DIR dir] [DEPS ...])
#   Builds an actor package as a directory package: DIR (default
#   ${CMAKE_CURRENT_BINARY_DIR}/TARGET) receives lib<TARGET>.so and
#   manifest.yaml. The library's RUNPATH is $ORIGIN:$ORIGIN/lib, where a
#   package bundles its private libraries. Hidden visibility keeps everything
#   but the entry point (marked visible by TROUPE_PACKAGE) out of the dynamic
#   symbol table, where it could clash with another package's code.
function(troupe_package target)
  cmake_parse_arguments(arg "" "MANIFEST;DIR" "SOURCES;DEPS" ${ARGN})
  if(NOT arg_MANIFEST)
    message(FATAL_ERROR "troupe_package(${target}): MANIFEST is required (a manifest.yaml, docs/MANIFEST.md)")
  endif()
  if(NOT arg_DIR)
    set(arg_DIR ${CMAKE_CURRENT_BINARY_DIR}/${target})
  endif()
  get_filename_component(manifest ${arg_MANIFEST} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  add_library(${target} MODULE ${arg_SOURCES})
  target_link_libraries(${target} PRIVATE troupe::sdk ${TROUPE_PACKAGE_LINK} ${arg_DEPS})
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
    COMMAND ${CMAKE_COMMAND} -E copy_if_different ${manifest} ${arg_DIR}/manifest.yaml
    BYPRODUCTS ${arg_DIR}/manifest.yaml  # so that Ninja knows who makes it (troupe_signed_package)
    COMMENT "Assembling package ${arg_DIR}")
endfunction()

# troupe_python_package(TARGET MANIFEST file [MODULES paths...]
#                       [SITE_PACKAGES dirs...] [DEPENDS files-or-targets...] [DIR dir])
#   Assembles a package of runtime python (docs/MANIFEST.md §3.2) as a
#   directory package: DIR (default ${CMAKE_CURRENT_BINARY_DIR}/TARGET)
#   receives manifest.yaml, each of MODULES (a .py file or a package
#   directory) and the contents of each SITE_PACKAGES directory under
#   site-packages/ (pure-Python dependencies, unpacked). Target TARGET is
#   built by default; troupe_signed_package(... TARGET TARGET) packs it.
function(troupe_python_package target)
  cmake_parse_arguments(arg "" "MANIFEST;DIR" "MODULES;SITE_PACKAGES;DEPENDS" ${ARGN})
  if(NOT arg_MANIFEST)
    message(FATAL_ERROR "troupe_python_package(${target}): MANIFEST is required (a manifest.yaml, docs/MANIFEST.md)")
  endif()
  if(NOT arg_DIR)
    set(arg_DIR ${CMAKE_CURRENT_BINARY_DIR}/${target})
  endif()
  get_filename_component(manifest ${arg_MANIFEST} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  set(commands COMMAND ${CMAKE_COMMAND} -E rm -rf ${arg_DIR} COMMAND ${CMAKE_COMMAND} -E make_directory ${arg_DIR})
  set(depends ${manifest})
  foreach(module ${arg_MODULES})
    get_filename_component(module ${module} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    get_filename_component(name ${module} NAME)
    if(IS_DIRECTORY ${module})
      file(GLOB_RECURSE files CONFIGURE_DEPENDS ${module}/*.py)
      list(APPEND depends ${files})
      list(APPEND commands COMMAND ${CMAKE_COMMAND} -E copy_directory ${module} ${arg_DIR}/${name})
    else()
      list(APPEND depends ${module})
      list(APPEND commands COMMAND ${CMAKE_COMMAND} -E copy ${module} ${arg_DIR}/${name})
    endif()
  endforeach()
  foreach(site ${arg_SITE_PACKAGES})
    get_filename_component(site ${site} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_BINARY_DIR})
    list(APPEND commands COMMAND ${CMAKE_COMMAND} -E copy_directory ${site} ${arg_DIR}/site-packages)
  endforeach()
  # The manifest last: troupe_signed_package re-packs when it is newer.
  list(APPEND commands COMMAND ${CMAKE_COMMAND} -E copy ${manifest} ${arg_DIR}/manifest.yaml)
  add_custom_command(OUTPUT ${arg_DIR}/manifest.yaml ${commands} DEPENDS ${depends} ${arg_DEPENDS}
                     COMMENT "Assembling python package ${arg_DIR}" VERBATIM)
  add_custom_target(${target} ALL DEPENDS ${arg_DIR}/manifest.yaml)
  set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${arg_DIR})
endfunction()

# troupe_signed_package(NAME TARGET t GROUP g VERSION v [KEY private_key]
#                       [DIR package_dir] [OUT out_dir] [DEPS private_libraries...]
#                       [WHEELS pure_python_wheels...])
#   Target NAME (built by default) packs the directory package of target t
#   (DIR, default: where troupe_package put t's library and manifest.yaml)
#   with `troupe pack --version v`, bundling DEPS under lib/ (native) or
#   unpacking WHEELS into site-packages/ (python: `--wheel`), signed with KEY
#   (default ${TROUPE_SIGNING_KEY}), into OUT/g-v.tpkg (OUT default
#   ${TROUPE_PACKAGE_OUT}, else the calling directory's binary dir).
function(troupe_signed_package name)
  cmake_parse_arguments(arg "" "TARGET;GROUP;VERSION;KEY;DIR;OUT" "DEPS;WHEELS" ${ARGN})
  foreach(required TARGET GROUP VERSION)
    if(NOT arg_${required})
      message(FATAL_ERROR "troupe_signed_package(${name}): ${required} is required")
    endif()
  endforeach()
  if(NOT arg_KEY)
    set(arg_KEY ${TROUPE_SIGNING_KEY})
  endif()
  if(NOT arg_KEY)
    message(FATAL_ERROR "troupe_signed_package(${name}): no signing key. Make one with `troupe keygen NAME` "
                        "and give NAME.key as KEY or -DTROUPE_SIGNING_KEY=NAME.key (systems trust NAME.pub)")
  endif()
  get_filename_component(key ${arg_KEY} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  if(NOT arg_DIR)
    get_target_property(arg_DIR ${arg_TARGET} LIBRARY_OUTPUT_DIRECTORY)
  endif()
  if(NOT arg_OUT)
    set(arg_OUT ${TROUPE_PACKAGE_OUT})
  endif()
  if(NOT arg_OUT)
    set(arg_OUT ${CMAKE_CURRENT_BINARY_DIR})
  endif()
  set(archive ${arg_OUT}/${arg_GROUP}-${arg_VERSION}.tpkg)
  set(dep_args)
  foreach(dep ${arg_DEPS})
    list(APPEND dep_args --dep ${dep})
  endforeach()
  foreach(wheel ${arg_WHEELS})
    list(APPEND dep_args --wheel ${wheel})
  endforeach()
  # The key is a file dependency unless a target of this build makes it.
  set(key_file ${key})
  if(TROUPE_SIGNING_KEY_TARGET AND key STREQUAL TROUPE_SIGNING_KEY)
    set(key_file)
  endif()
  add_custom_command(OUTPUT ${archive}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${arg_OUT}
    COMMAND troupe::troupe pack ${arg_DIR}/manifest.yaml --key ${key} --version ${arg_VERSION} ${dep_args}
            --out ${archive}
    DEPENDS ${arg_TARGET} troupe::troupe ${arg_DIR}/manifest.yaml ${key_file} ${arg_DEPS} ${arg_WHEELS}
    COMMENT "Signing ${arg_GROUP}-${arg_VERSION}.tpkg"
    VERBATIM)
  add_custom_target(${name} ALL DEPENDS ${archive})
  if(TROUPE_SIGNING_KEY_TARGET AND key STREQUAL TROUPE_SIGNING_KEY)
    add_dependencies(${name} ${TROUPE_SIGNING_KEY_TARGET})
  endif()
endfunction()
