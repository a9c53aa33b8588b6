# mt_relative_rpath(TARGET DESTDIR): gives an installed executable (installed
# into DESTDIR, relative to the prefix) the RUNPATH $ORIGIN/<DESTDIR to
# libdir>, so it finds libmesatee wherever the prefix is installed or moved
# to, and removes it again when the install prefix is / or /usr (decided at
# install time: `cmake --install --prefix`, cpack), where the library is on
# the standard search path and an RPATH is against Debian policy.
function(mt_relative_rpath target dest)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${dest}")
    return()
  endif()
  file(RELATIVE_PATH _rel "/mt-prefix/${dest}" "/mt-prefix/${CMAKE_INSTALL_LIBDIR}")
  string(REGEX REPLACE "/$" "" _rel "${_rel}")
  set_target_properties(${target} PROPERTIES INSTALL_RPATH "\$ORIGIN/${_rel}")
  install(CODE "
    if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\" OR CMAKE_INSTALL_PREFIX STREQUAL \"/\")
      file(RPATH_REMOVE FILE \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${dest}/$<TARGET_FILE_NAME:${target}>\")
    endif()")
endfunction()
