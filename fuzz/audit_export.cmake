# Fuzz target for the audit export reader (`audit verify --export` input;
# owned by the core module).
mt_add_fuzzer(audit_export SOURCES ${MT_FUZZ_DIR}/audit_export.c LIBS mt_core)
