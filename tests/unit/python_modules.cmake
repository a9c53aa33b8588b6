# The operator's python allow-list (python_modules.h): canonical text, garbage
# in --python-allow/--python-deny, the worker's validity check.
mt_add_unit_test(test_python_modules SOURCES ${MT_TEST_DIR}/unit/test_python_modules.c
                 LIBS mt_bschema)
