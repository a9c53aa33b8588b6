file(REMOVE_RECURSE
  "CMakeFiles/mt_common.dir/mt_err.c.o"
  "CMakeFiles/mt_common.dir/mt_err.c.o.d"
  "CMakeFiles/mt_common.dir/mt_json.c.o"
  "CMakeFiles/mt_common.dir/mt_json.c.o.d"
  "CMakeFiles/mt_common.dir/mt_log.c.o"
  "CMakeFiles/mt_common.dir/mt_log.c.o.d"
  "CMakeFiles/mt_common.dir/mt_util.c.o"
  "CMakeFiles/mt_common.dir/mt_util.c.o.d"
  "libmt_common.a"
  "libmt_common.pdb"
)

# Per-language clean rules from dependency scanning.
foreach(lang C)
  include(CMakeFiles/mt_common.dir/cmake_clean_${lang}.cmake OPTIONAL)
endforeach()
