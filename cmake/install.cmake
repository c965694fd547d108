# What `cmake --install` puts under the prefix (GNUInstallDirs paths, so that a
# Debian package can reuse it as is; docs/SDK.md):
#   bin/troupe, bin/troupe-worker            the CLI and daemon, and the worker
#                                            it starts (found beside it)
#   bin/troupe-worker-python                 the worker of packages of runtime python
#   lib/libtroupe-client.so*                 troupe::client
#   include/troupe/                          the public headers (troupe::sdk)
#   lib/cmake/troupe/                        troupeConfig.cmake and its version
#                                            file, the exported targets,
#                                            troupePackage.cmake (the functions)
#   share/doc/troupe/                        README, docs/*.md, examples/
#   share/man/man1/troupe.1.gz               the man page (when help2man is found)
#   share/bash-completion/completions/troupe the bash completion
# Tests, benchmarks and fuzz targets are never installed.

include(CMakePackageConfigHelpers)

set(TROUPE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/troupe)

install(TARGETS troupe troupe-worker troupe_client troupe_sdk
  EXPORT troupeTargets
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS troupe-worker-python RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/troupe DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

install(EXPORT troupeTargets NAMESPACE troupe:: DESTINATION ${TROUPE_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/troupeConfig.cmake.in
  ${PROJECT_BINARY_DIR}/troupeConfig.cmake INSTALL_DESTINATION ${TROUPE_CMAKE_DIR})
# 0.x: a minor version may break the SDK's ABI (abi.h), so only the same minor
# is compatible; from 1.0 on, SameMajorVersion.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/troupeConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/troupeConfig.cmake ${PROJECT_BINARY_DIR}/troupeConfigVersion.cmake
              ${CMAKE_CURRENT_LIST_DIR}/troupePackage.cmake
        DESTINATION ${TROUPE_CMAKE_DIR})

install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples DESTINATION ${CMAKE_INSTALL_DOCDIR})

if(TROUPE_MAN_PAGE)
  install(FILES ${TROUPE_MAN_PAGE}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()
install(FILES ${PROJECT_SOURCE_DIR}/packaging/troupe.bash-completion
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME troupe)
