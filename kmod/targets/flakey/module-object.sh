#!/bin/sh
# Turns the flakey module's kernel library into the one object the module links:
#
#   kmod/targets/flakey/module-object.sh <libdm_target_flakey.a> <output.o>
#
# NetBSD's module loader refuses a module that defines a global symbol another loaded module
# (dm.kmod) already defines, and both libraries carry Rust's runtime (compiler_builtins, the
# probestack) under the same names. So the library's objects are linked into one (ld -r,
# --whole-archive) and every symbol made local except the one the module's C file calls,
# dm_target_flakey_ops. Undefined symbols stay: dmglue_alloc, dmglue_free, dmglue_panic (from
# dm.kmod, which the module requires) and the kernel's memory functions.
set -eu
lib=${1:?usage: module-object.sh <libdm_target_flakey.a> <output.o>}
out=${2:?usage: module-object.sh <libdm_target_flakey.a> <output.o>}
: "${LD:=ld.lld}"
: "${OBJCOPY:=llvm-objcopy}"
"$LD" -r --whole-archive -o "$out.tmp" "$lib"
"$OBJCOPY" --keep-global-symbol=dm_target_flakey_ops "$out.tmp" "$out"
rm -f "$out.tmp"
