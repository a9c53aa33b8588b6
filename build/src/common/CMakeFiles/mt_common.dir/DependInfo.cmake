
# Consider dependencies only in project.
set(CMAKE_DEPENDS_IN_PROJECT_ONLY OFF)

# The set of languages for which implicit dependencies are needed:
set(CMAKE_DEPENDS_LANGUAGES
  )

# The set of dependency files which are needed:
set(CMAKE_DEPENDS_DEPENDENCY_FILES
  "/work/main/src/common/mt_err.c" "src/common/CMakeFiles/mt_common.dir/mt_err.c.o" "gcc" "src/common/CMakeFiles/mt_common.dir/mt_err.c.o.d"
  "/work/main/src/common/mt_json.c" "src/common/CMakeFiles/mt_common.dir/mt_json.c.o" "gcc" "src/common/CMakeFiles/mt_common.dir/mt_json.c.o.d"
  "/work/main/src/common/mt_log.c" "src/common/CMakeFiles/mt_common.dir/mt_log.c.o" "gcc" "src/common/CMakeFiles/mt_common.dir/mt_log.c.o.d"
  "/work/main/src/common/mt_util.c" "src/common/CMakeFiles/mt_common.dir/mt_util.c.o" "gcc" "src/common/CMakeFiles/mt_common.dir/mt_util.c.o.d"
  )

# Targets to which this target links.
set(CMAKE_TARGET_LINKED_INFO_FILES
  )

# Fortran module output directory.
set(CMAKE_Fortran_TARGET_MODULE_DIR "")
