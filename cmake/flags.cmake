# One warnings line, errors on; hardening on every build.
add_compile_options(
  -Wall -Wextra -Werror -Wformat=2 -Wformat-security -Wvla -Wimplicit-fallthrough
  -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
  -fstack-protector-strong -fno-strict-overflow -fno-delete-null-pointer-checks)
add_compile_definitions(_GNU_SOURCE)
# Reproducible builds (docs/reproducible-builds.md): the source and build
# directories do not appear in the objects (debug info, __FILE__).
add_compile_options(-ffile-prefix-map=${CMAKE_SOURCE_DIR}=. -ffile-prefix-map=${CMAKE_BINARY_DIR}=build)
if(NOT CMAKE_BUILD_TYPE STREQUAL "Debug" AND NOT MT_SANITIZE)
  add_compile_definitions(_FORTIFY_SOURCE=2)
endif()
add_link_options(-Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack)
if(MT_SANITIZE OR MT_FUZZ)
  # One macro for "built with AddressSanitizer/UBSan" that gcc and clang both
  # see (clang 14 defines no __SANITIZE_ADDRESS__): the worker then runs
  # without RLIMIT_AS and allows the sanitizer runtime's few syscalls.
  add_compile_definitions(MT_SANITIZER_BUILD=1)
endif()
if(MT_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(MT_FUZZ)
  # clang only: coverage instrumentation for everything, sanitizers on.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
