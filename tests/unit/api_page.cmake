# List paging: the query reader and the cursor codec (src/core/api_page.c).
mt_add_unit_test(test_api_page SOURCES ${MT_TEST_DIR}/unit/test_api_page.c LIBS mt_core)
target_include_directories(test_api_page PRIVATE ${PROJECT_SOURCE_DIR}/src/core)
