dnl ROOST_ADD_CFLAG(FLAG): append FLAG to ROOST_CFLAGS when the compiler takes it.
AC_DEFUN([ROOST_ADD_CFLAG], [
  AC_MSG_CHECKING([whether $CC accepts $1])
  roost_save_CFLAGS="$CFLAGS"
  CFLAGS="$CFLAGS -Werror $1"
  AC_LINK_IFELSE([AC_LANG_PROGRAM([], [])],
    [AC_MSG_RESULT([yes]); ROOST_CFLAGS="$ROOST_CFLAGS $1"],
    [AC_MSG_RESULT([no])])
  CFLAGS="$roost_save_CFLAGS"
])
