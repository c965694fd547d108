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

# troupe_signed_package() (cmake/troupePackage.cmake) signs with that key by
# default, into build/packages unless told OUT.
set(TROUPE_SIGNING_KEY ${TROUPE_DEV_KEY})
set(TROUPE_SIGNING_KEY_TARGET troupe_dev_key)
