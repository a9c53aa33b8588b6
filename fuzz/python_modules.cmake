# The operator's python allow-list (python_modules.h): --python-allow and
# --python-deny values, and the worker's check of the stored list.
mt_add_fuzzer(python_modules SOURCES ${MT_FUZZ_DIR}/python_modules.c LIBS mt_bschema)
