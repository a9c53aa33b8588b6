# libmesatee's reader of typed server answers (src/client/typed_decode.c).
mt_add_unit_test(test_client_typed SOURCES ${MT_TEST_DIR}/unit/test_client_typed.c
                 LIBS mt_client_typed)
