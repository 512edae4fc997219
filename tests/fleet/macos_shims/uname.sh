#!/bin/sh
# uname for simulated macOS fleet hosts: a SHIM in /usr/local/bin, ahead of /usr/bin/uname on PATH
# (see tests/fleet/README.md). The kernel is Linux; this says what a Mac's uname would say.
case "$*" in
  ""|-s) echo Darwin ;;
  -r) echo 23.5.0 ;;
  -m) echo x86_64 ;;
  -p) echo i386 ;;
  -n) /usr/bin/uname -n ;;
  -v) echo 'Darwin Kernel Version 23.5.0: Wed May  1 20:09:52 PDT 2024; root:xnu-10063.121.3~5/RELEASE_X86_64' ;;
  -a) echo "Darwin $(/usr/bin/uname -n) 23.5.0 Darwin Kernel Version 23.5.0: Wed May  1 20:09:52 PDT 2024; root:xnu-10063.121.3~5/RELEASE_X86_64 x86_64" ;;
  *) echo "usage: uname [-amnprsv]" >&2; exit 1 ;;
esac
