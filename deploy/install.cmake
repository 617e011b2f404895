# deploy/install.cmake: what `cmake --install` puts where (GNUInstallDirs
# under the prefix, /usr/local by default) and the .deb CPack builds from
# it (`cpack -G DEB` in the build dir; prefix /usr). docs/operations.md
# "Install" lists the files; tests/integration/test_install.sh installs
# into a DESTDIR (and the .deb with dpkg, BOOKD_TEST_DPKG=1) and books a
# seat with a client compiled against the installed pkg-config file.
include(GNUInstallDirs)

# bin/: the server, the CLI, the load harness, the backup tool.
install(TARGETS bookd bookctl bookbench bookd-backup
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# The client library: shared (SONAME libbookd_client.so.1) and static, its
# header and its pkg-config file. The .pc is written at install time so
# that its prefix is the one installed into (cmake --install --prefix P,
# CPack's /usr), not the one configured.
install(TARGETS bookd_client_shared
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS bookd_client_static
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${PROJECT_SOURCE_DIR}/api/client/bookd_client.h
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set(bookd_pc ${PROJECT_BINARY_DIR}/api/client/bookd-client.pc)
install(CODE "
  set(BOOKD_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
  set(CMAKE_INSTALL_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(CMAKE_INSTALL_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/api/client/bookd-client.pc.in\"
                 \"${bookd_pc}\" @ONLY)")
install(FILES ${bookd_pc} DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# share/bookd/: the reporting schema's migrations (bookd embeds them too;
# these are for reading and for applying by hand), the unit and the
# example environment file (deploy/); share/doc/bookd/: the docs.
install(DIRECTORY ${PROJECT_SOURCE_DIR}/replicator/migrations
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bookd
        FILES_MATCHING PATTERN "*.sql")
install(FILES ${PROJECT_SOURCE_DIR}/deploy/bookd.env.example
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bookd)
# The unit where systemd reads units of the prefix (/usr/lib/systemd/system
# in the .deb, /usr/local/lib/systemd/system from source).
# Written at install time like the .pc: ExecStart names the installed
# bookd.
set(bookd_unit ${PROJECT_BINARY_DIR}/deploy/bookd.service)
install(CODE "
  set(BOOKD_BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
  set(BOOKD_DOCDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/deploy/bookd.service.in\"
                 \"${bookd_unit}\" @ONLY)")
install(FILES ${bookd_unit} DESTINATION lib/systemd/system)
# The backup and restore scripts (they find bookd-backup on PATH).
install(PROGRAMS ${PROJECT_SOURCE_DIR}/scripts/backup.sh
        ${PROJECT_SOURCE_DIR}/scripts/restore.sh
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bookd/scripts)
# bookbench's PostgreSQL baseline (bookbench --sql DIR, docs/benchmarks.md).
install(DIRECTORY ${PROJECT_SOURCE_DIR}/bench/baseline
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bookd
        FILES_MATCHING PATTERN "*.sql")
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(FILES ${PROJECT_SOURCE_DIR}/README.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# The .deb: bookd_<version>_<arch>.deb. Depends computed by dpkg-shlibdeps
# from the installed binaries (liburing2, libjemalloc2, libpq5,
# libmsgpackc2, libssl3, ...; xxHash is compiled in); the shared library gets a
# shlibs file and the ldconfig trigger; postinst and postrm only reload
# systemd (the unit is not enabled or started by the package).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME bookd)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "bookd")
set(CPACK_PACKAGE_CONTACT "bookd maintainers <bookd@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "booking engine: sharded in-memory core, write-ahead log, io_uring server")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
    ${PROJECT_SOURCE_DIR}/deploy/debian/postrm
    ${PROJECT_SOURCE_DIR}/deploy/debian/triggers)
include(CPack)
