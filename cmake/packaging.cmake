# Signed packages of the build tree. The build makes one development key
# (build/keys/dev.key, never committed) and signs every example, fixture and
# bench package with it; the archives land in build/packages/ (examples) or
# build/tests/packages/ (fixtures) as <group>-<version>.tpkg, with dev.pub
# beside them. Tests and the demo trust that key by copying dev.pub into the
# keys/ of their own TROUPE_HOME.

set(TROUPE_PACKAGE_OUT ${CMAKE_BINARY_DIR}/packages)
set(TROUPE_FIXTURE_PACKAGE_OUT ${CMAKE_BINARY_DIR}/tests/packages)
set(TROUPE_DEV_KEY ${CMAKE_BINARY_DIR}/keys/dev.key)
set(TROUPE_DEV_PUB ${TROUPE_PACKAGE_OUT}/dev.pub)

# Made once per build tree: a new key at every build would change every
# package id for nothing.
add_custom_target(troupe_dev_key
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/keys ${TROUPE_PACKAGE_OUT}
          ${TROUPE_FIXTURE_PACKAGE_OUT}
  COMMAND sh -c "test -f '${TROUPE_DEV_KEY}' || '$<TARGET_FILE:troupe>' keygen '${CMAKE_BINARY_DIR}/keys/dev' >/dev/null"
  COMMAND ${CMAKE_COMMAND} -E copy_if_different ${CMAKE_BINARY_DIR}/keys/dev.pub ${TROUPE_DEV_PUB}
  COMMAND ${CMAKE_COMMAND} -E copy_if_different ${CMAKE_BINARY_DIR}/keys/dev.pub
          ${TROUPE_FIXTURE_PACKAGE_OUT}/dev.pub
  BYPRODUCTS ${TROUPE_DEV_PUB}
  COMMENT "Development signing key build/keys/dev.key"
  VERBATIM)
add_dependencies(troupe_dev_key troupe)

# troupe_signed_package(NAME TARGET t GROUP g VERSION v [DIR package_dir]
#                       [OUT out_dir] [DEPS private_libraries...])
#   Target NAME (built by default) packs the directory package of target t
#   (DIR: where troupe_package put manifest.yaml and the library) with
#   `troupe pack --version v`, bundling DEPS under lib/, signed with the
#   development key, into OUT (default build/packages)/g-v.tpkg.
function(troupe_signed_package name)
  cmake_parse_arguments(arg "" "TARGET;GROUP;VERSION;DIR;OUT" "DEPS" ${ARGN})
  if(NOT arg_OUT)
    set(arg_OUT ${TROUPE_PACKAGE_OUT})
  endif()
  set(archive ${arg_OUT}/${arg_GROUP}-${arg_VERSION}.tpkg)
  set(dep_args)
  foreach(dep ${arg_DEPS})
    list(APPEND dep_args --dep ${dep})
  endforeach()
  add_custom_command(OUTPUT ${archive}
    COMMAND $<TARGET_FILE:troupe> pack ${arg_DIR}/manifest.yaml --key ${TROUPE_DEV_KEY}
            --version ${arg_VERSION} ${dep_args} --out ${archive}
    DEPENDS ${arg_TARGET} troupe ${arg_DIR}/manifest.yaml ${arg_DEPS}
    COMMENT "Signing ${arg_GROUP}-${arg_VERSION}.tpkg"
    VERBATIM)
  add_custom_target(${name} ALL DEPENDS ${archive})
  add_dependencies(${name} troupe_dev_key)
endfunction()
