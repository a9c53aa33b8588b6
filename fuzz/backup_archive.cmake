# Fuzz target for the backup archive reader (`mesatee restore` input; owned by
# the core module).
mt_add_fuzzer(backup_archive SOURCES ${MT_FUZZ_DIR}/backup_archive.c LIBS mt_core)
