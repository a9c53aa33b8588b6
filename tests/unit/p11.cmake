# libmesatee-pkcs11 (issue 10): every function of the module called with
# fixed and random arguments, handles and templates (no server needed; the
# integration test it_pkcs11 runs it again logged in to a live server).
add_executable(test_p11_randcall ${MT_TEST_DIR}/unit/test_p11_randcall.c)
target_include_directories(test_p11_randcall PRIVATE ${PROJECT_SOURCE_DIR}/src/pkcs11 ${MT_P11KIT_INCLUDE})
target_link_libraries(test_p11_randcall PRIVATE ${CMAKE_DL_LIBS})
add_dependencies(test_p11_randcall mesatee_pkcs11)
add_test(NAME test_p11_randcall COMMAND test_p11_randcall $<TARGET_FILE:mesatee_pkcs11>)
set_tests_properties(test_p11_randcall PROPERTIES TIMEOUT 300)
# The module's readers of outside input: configuration file and transit answers.
mt_add_unit_test(test_p11_read SOURCES ${MT_TEST_DIR}/unit/test_p11_read.c LIBS mt_p11_read)
# Several threads, one session each, signing/verifying/encrypting/decrypting
# at once against a live server, then a logout race (it_pkcs11_threads).
add_executable(test_p11_threads ${MT_TEST_DIR}/unit/test_p11_threads.c)
target_include_directories(test_p11_threads PRIVATE ${PROJECT_SOURCE_DIR}/src/pkcs11 ${MT_P11KIT_INCLUDE})
target_link_libraries(test_p11_threads PRIVATE ${CMAKE_DL_LIBS} Threads::Threads PkgConfig::OPENSSL)
add_dependencies(test_p11_threads mesatee_pkcs11)
