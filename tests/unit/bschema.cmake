# Built-in argument schemas (mt_bschema): table in step with the registry,
# garbage values, unknown/missing arguments, slot layouts.
mt_add_unit_test(test_bschema SOURCES ${MT_TEST_DIR}/unit/test_bschema.c
                 LIBS mt_bschema mt_executor)
