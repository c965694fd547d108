# The Debian package (CPack DEB): `make deb`, or `cpack -G DEB` in a build
# directory, makes troupe_VERSION_ARCH.deb of everything install.cmake
# installs, under /usr, plus what only a system package has:
#   lib/systemd/system/troupe@.service    one system per instance (= port),
#                                         Type=notify (docs/OPERATIONS.md)
#   share/doc/troupe/copyright, changelog.gz (a native package: the version
#                                         has no Debian revision)
#   triggers (ldconfig), postinst (the troupe system user, home /var/lib/troupe), prerm (stops
#   the instances), postrm (purge removes /var/lib/troupe)
# Depends comes from dpkg-shlibdeps (the libraries the programs link), plus
# adduser for postinst. tests/deb/run.sh builds it and checks it.

set(TROUPE_SYSTEMD_UNIT_DIR lib/systemd/system CACHE STRING
    "where troupe@.service is installed, relative to the prefix")
install(FILES ${PROJECT_SOURCE_DIR}/packaging/troupe@.service DESTINATION ${TROUPE_SYSTEMD_UNIT_DIR})

# What Debian asks of every package's doc directory. The date honours
# SOURCE_DATE_EPOCH, so the same tree makes the same package.
# Who answers for the package (Maintainer, changelog): set it when publishing
# one; the default's domain is reserved (RFC 2606), no mail reaches it.
set(TROUPE_DEB_MAINTAINER "troupe maintainers <troupe@troupe.invalid>" CACHE STRING
    "Maintainer of the Debian package: NAME <ADDRESS>")
string(TIMESTAMP TROUPE_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
set(TROUPE_DEB_CHANGELOG ${PROJECT_BINARY_DIR}/debian/changelog)
file(WRITE ${TROUPE_DEB_CHANGELOG}
     "troupe (${PROJECT_VERSION}) unstable; urgency=medium\n\n"
     "  * Built from the troupe source tree (no release notes yet).\n\n"
     " -- ${TROUPE_DEB_MAINTAINER}  ${TROUPE_DEB_DATE}\n")
find_program(GZIP_PROGRAM gzip REQUIRED)
execute_process(COMMAND ${GZIP_PROGRAM} -9nf ${TROUPE_DEB_CHANGELOG} RESULT_VARIABLE gzip_rc)
if(NOT gzip_rc EQUAL 0)
  message(FATAL_ERROR "gzip ${TROUPE_DEB_CHANGELOG} failed")
endif()
install(FILES ${PROJECT_SOURCE_DIR}/packaging/debian/copyright ${TROUPE_DEB_CHANGELOG}.gz
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME troupe)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${TROUPE_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "process-isolated actor supervisor")
set(CPACK_PACKAGE_DESCRIPTION
    "troupe runs actors, packaged as signed shared libraries, each in a worker\n\
process of its own, supervised and restarted by a daemon; systems on several\n\
hosts form a convention. This package has the troupe CLI and daemon, the\n\
worker, the C++ client library, the actor SDK headers with their CMake\n\
package, and the troupe@.service template for systemd.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # troupe_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
# libtroupe-client.so.0: a shlibs file for the packages that link it, and the
# ldconfig trigger (a library in /usr/lib: packaging/debian/triggers).
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
                                       ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
                                       ${PROJECT_SOURCE_DIR}/packaging/debian/postrm
                                       ${PROJECT_SOURCE_DIR}/packaging/debian/triggers)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)
# No -dbgsym package: the programs ship stripped.
set(CPACK_STRIP_FILES ON)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/deb)
include(CPack)
