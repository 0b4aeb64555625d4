#!/bin/sh
# Builds libdmkmod.a, the Rust side of the dm kernel module, for a kernel target.
#
#   kmod/build-staticlib.sh <target> [<output dir>]
#     <target>: x86_64-unknown-none (NetBSD amd64) or aarch64-unknown-none-softfloat (NetBSD
#               evbarm aarch64)
#     prints the path of the library; copies it into <output dir> when given.
#   DMKMOD_PACKAGE=<cargo package> builds another kernel library the same way (default dmkmod;
#   dm-target-flakey: the flakey target module's, libdm_target_flakey.a).
#
# Used by Makefile.bsd and by kmod/check (CI): the kernel flags live here and nowhere else, so
# that host builds of the workspace stay ordinary.
#
# Why these flags (see DESIGN.md, "Kernel build"):
# - profile `kernel`: panic = "abort" (a panic is panic(9) through the glue, never unwinding);
#   LTO and one codegen unit so that the library is one object with the fewest cross-object
#   references (set here through cargo's environment, so the workspace profile stays as it is);
# - relocation-model=static: the module loader (kobj) applies only absolute and PC-relative
#   relocations; position-independent code would reference a GOT it does not build;
# - code-model=kernel on amd64: modules live in the top 2 GiB, where 32-bit sign-extended
#   absolute addresses (R_X86_64_32S) reach them, as NetBSD's own modules are compiled;
# - -Zbuild-std=core,alloc: rustup's prebuilt core/alloc/compiler_builtins for these targets are
#   position-independent (GOTPCREL relocations); rebuilding them with the same flags removes that.
#   RUSTC_BOOTSTRAP=1 lets the stable toolchain take -Z flags (rust-src must be installed).
# - -Z plt=yes on amd64: the target's default (no PLT) makes LLVM call memcpy and the other
#   runtime functions through the GOT (R_X86_64_GOTPCREL); with it, they are direct calls.
# - kobjfix on amd64: LLVM marks direct calls R_X86_64_PLT32, which NetBSD's amd64 loader does not
#   take; without a PLT it means PC32, and kobjfix rewrites it so (kmod/RELOCATIONS.md).
# - no FP/SIMD: both targets are soft-float already (x86_64-unknown-none disables MMX/SSE/AVX;
#   aarch64-unknown-none-softfloat disables FP and NEON); kmod/check verifies the code.
set -eu

target=${1:?usage: build-staticlib.sh <x86_64-unknown-none|aarch64-unknown-none-softfloat> [outdir]}
outdir=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

case "$target" in
x86_64-unknown-none)
	flags="-C relocation-model=static -C code-model=kernel -Z plt=yes" ;;
aarch64-unknown-none-softfloat)
	flags="-C relocation-model=static" ;;
*)
	echo "build-staticlib.sh: unsupported target $target" >&2; exit 2 ;;
esac

pkg=${DMKMOD_PACKAGE:-dmkmod}
libname=lib$(echo "$pkg" | tr '-' '_').a

: "${CARGO:=cargo}"
: "${CARGO_TARGET_DIR:=$root/target}"
export CARGO_TARGET_DIR
export RUSTC_BOOTSTRAP=1
export CARGO_PROFILE_KERNEL_LTO=true
export CARGO_PROFILE_KERNEL_CODEGEN_UNITS=1
# Only target artifacts get these: with --target, build scripts (bindgen) are built normally.
export CARGO_TARGET_$(echo "$target" | tr 'a-z.-' 'A-Z__')_RUSTFLAGS="$flags"

cd "$root"
"$CARGO" build --quiet -p "$pkg" --target "$target" --profile kernel \
	-Z build-std=core,alloc >&2

built="$CARGO_TARGET_DIR/$target/kernel/$libname"
# The fixed library goes next to cargo's (or into <output dir>); cargo's own stays as rustc made it.
lib="$CARGO_TARGET_DIR/$target/kernel/kmod/$libname"
[ -n "$outdir" ] && lib="$outdir/$libname"
mkdir -p "$(dirname "$lib")"
cp "$built" "$lib"
if [ "$target" = x86_64-unknown-none ]; then
	"$CARGO" run --quiet -p kmod-tools --bin kobjfix -- "$lib" >&2
fi
echo "$lib"
