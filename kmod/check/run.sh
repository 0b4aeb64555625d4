#!/usr/bin/env bash
# kmod/check/run.sh: every check of the kernel module that runs on Linux, with its figures.
#
#   1. the Rust static library builds for x86_64-unknown-none and aarch64-unknown-none-softfloat;
#   2. for each: undefined symbols (dmglue_* and memcpy/memmove/memset/memcmp only), relocation
#      types (only those NetBSD's module loader applies, kmod/RELOCATIONS.md), no FP/SIMD
#      instruction, the panic call sites left;
#   3. the exports match kmod/include/dmcore.h (checked by the compiler; shown to bite);
#   4. the NetBSD glue compiles for NetBSD/amd64 (clang, -Wall -Werror) against NetBSD's
#      installed headers (PyPI ziglang 0.17.0) plus kmod/check/netbsd-include, and links with
#      the library into a module object, whose kernel interfaces and relocations are listed;
#   5. the glue runs on Linux against the stand-in kernel of kmod/hosttest, linked with the
#      core built for the host: the recorded NetBSD exchanges, I/O, attach/detach, unload, and
#      a target module written in C against kmod/include/dmtarget.h, autoloaded;
#   6. the flakey target built as a separate module (kmod/targets/flakey): its kernel library
#      for both targets with the checks of 2, its glue compiled for NetBSD/amd64 like 4 and
#      linked into dm_target_flakey.kmod.o, which may take from outside only what dm.kmod
#      defines and the kernel's memory functions, and must define no global symbol dm.kmod
#      defines (NetBSD's loader refuses a redefinition).
#
# Installs what it lacks (apt-get, pip, rustup). Environment: CARGO_TARGET_DIR (default
# <repo>/target), DM_GOLDEN (default <repo>/../shared/reference/netbsd-golden), KMOD_CHECK_CACHE
# (where the NetBSD headers are kept; default $CARGO_TARGET_DIR/kmod-check).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
kmod=$(cd "$here/.." && pwd)
root=$(cd "$kmod/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
cache=${KMOD_CHECK_CACHE:-$CARGO_TARGET_DIR/kmod-check}
golden=${DM_GOLDEN:-$root/../shared/reference/netbsd-golden}
out=$CARGO_TARGET_DIR/kmod-check/out
mkdir -p "$cache" "$out"
failures=0
step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# ------------------------------------------------------------------ tools
step "tools"
need_apt=()
for tool in clang ld.lld llvm-objdump llvm-cxxfilt readelf nm ar python3; do
	command -v "$tool" >/dev/null || need_apt+=("$tool")
done
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need_apt+=(libclang)
if [ ${#need_apt[@]} -gt 0 ]; then
	echo "installing for: ${need_apt[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq clang lld llvm libclang-dev binutils python3 >/dev/null
fi
installed=$(rustup target list --installed)
for t in x86_64-unknown-none aarch64-unknown-none-softfloat; do
	grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
echo "clang: $(clang --version | head -1)"
echo "rustc: $(rustc --version)"

# NetBSD's installed headers, from PyPI's ziglang 0.17.0 (lib/libc/include/*netbsd*).
nbinc=$cache/netbsd-include-0.17.0
if [ ! -d "$nbinc/generic-netbsd" ]; then
	echo "fetching NetBSD headers (ziglang 0.17.0 from PyPI)"
	python3 -m pip download --quiet --no-deps --dest "$cache/wheel" ziglang==0.17.0
	python3 - "$cache/wheel" "$nbinc" <<'EOF'
import os, sys, zipfile
wheel_dir, dest = sys.argv[1], sys.argv[2]
wheel = next(os.path.join(wheel_dir, f) for f in os.listdir(wheel_dir) if f.endswith(".whl"))
prefix = "ziglang/lib/libc/include/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        rest = name[len(prefix):] if name.startswith(prefix) else None
        if rest and rest.split("/")[0] in ("generic-netbsd", "x86_64-netbsd-none", "x86-netbsd-none") \
                and not name.endswith("/"):
            path = os.path.join(dest, rest)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with z.open(name) as src, open(path, "wb") as dst:
                dst.write(src.read())
EOF
fi
echo "NetBSD headers: $nbinc ($(find "$nbinc" -name '*.h' | wc -l) files)"

# ------------------------------------------------------------------ 1, 2: kernel libraries
declare -A arch_of=([x86_64-unknown-none]=x86_64 [aarch64-unknown-none-softfloat]=aarch64)
for target in x86_64-unknown-none aarch64-unknown-none-softfloat; do
	step "staticlib for $target"
	start=$(date +%s)
	if ! lib=$("$kmod/build-staticlib.sh" "$target" "$out/$target"); then
		fail "build for $target"
		continue
	fi
	echo "built $lib ($(stat -c %s "$lib") bytes, $(( $(date +%s) - start )) s)"
	echo "command: kmod/build-staticlib.sh $target"
	python3 "$here/inspect_lib.py" "${arch_of[$target]}" "$lib" "$kmod/include/dmcore.h" ||
		fail "kernel library checks for $target"
done
# What the rewrite of kobjfix is for: rustc's own amd64 library, before it.
raw=$CARGO_TARGET_DIR/x86_64-unknown-none/kernel/libdmkmod.a
if [ -f "$raw" ]; then
	echo "[x86_64] before kobjfix (as rustc wrote it): $(readelf -rW "$raw" |
		awk '/^Relocation section/{s=$3} /R_X86_64/{ if (s !~ /debug/) print $3 }' |
		sort | uniq -c | awk '{printf "%s %s, ", $2, $1}' | sed 's/R_X86_64_//g; s/, $//')"
fi

# The FP/SIMD scan finds what it looks for (a float routine compiled for each machine).
printf 'double f(double a, double b) { return a * b + 1.5; }\n' >"$out/fp.c"
for a in x86_64 aarch64; do
	clang --target=$a-unknown-linux-gnu -O2 -c "$out/fp.c" -o "$out/fp-$a.o"
	n=$( (python3 "$here/inspect_lib.py" "$a" "$out/fp-$a.o" "$kmod/include/dmcore.h" || true) |
		sed -n 's/.*floating-point\/SIMD instructions: \([0-9]*\).*/\1/p')
	echo "[$a] scanner self-test: $n FP/SIMD instructions found in a float function (must be > 0)"
	[ "${n:-0}" -gt 0 ] || fail "FP scanner self-test on $a"
done

# ------------------------------------------------------------------ 3: exports against the header
step "exports against kmod/include/dmcore.h"
lib=$out/x86_64-unknown-none/libdmkmod.a
exported=$(nm --defined-only -g "$lib" 2>/dev/null | awk '$3 ~ /^dmcore_/ {print $3}' | sort -u)
declared=$(grep -o '\bdmcore_[a-z_]*\s*(' "$kmod/include/dmcore.h" | tr -d ' (' | sort -u)
if [ "$exported" = "$declared" ]; then
	echo "the library exports the header's $(wc -w <<<"$declared") dmcore_* functions, no more"
else
	fail "exports differ from the header: $(diff <(echo "$exported") <(echo "$declared") | tr '\n' ' ')"
fi
echo "prototypes: checked at compile time by build.rs (exports_check.rs) on every build"
sed 's/int\tdmcore_open(uint32_t minor);/int\tdmcore_open(uint64_t minor);/' \
	"$kmod/include/dmcore.h" >"$out/dmcore-changed.h"
if DMKMOD_HEADER="$out/dmcore-changed.h" cargo build --quiet -p dmkmod >"$out/changed.log" 2>&1; then
	fail "a changed prototype in the header did not break the build"
else
	grep -q "expected \`u32\`, found \`u64\`" "$out/changed.log" &&
		echo "a changed prototype (dmcore_open(uint64_t)) breaks the build: expected u32, found u64" ||
		fail "the changed prototype failed to build for another reason (see $out/changed.log)"
fi

# ------------------------------------------------------------------ 4: the glue for NetBSD
step "the glue compiled for NetBSD/amd64"
resource=$(clang -print-resource-dir)/include
nbflags=(-target x86_64-unknown-netbsd -D_KERNEL -D_MODULE -ffreestanding -nostdinc
	-std=gnu99 -Wall -Werror -O2 -fno-pic -fno-common -mcmodel=kernel -mno-red-zone
	-mno-sse -mno-mmx -mno-avx -D__NetBSD_Version__=1000000000
	-I "$here/netbsd-include" -I "$kmod/include" -I "$kmod/netbsd"
	-isystem "$nbinc/x86_64-netbsd-none" -isystem "$nbinc/generic-netbsd" -isystem "$resource")
echo "stand-ins for kernel-only headers: $(cd "$here/netbsd-include" && find . -name '*.h' | sed 's|^\./||' | sort | tr '\n' ' ')"
glue_ok=1
for src in dm_dev.c dm_glue.c; do
	if clang "${nbflags[@]}" -c "$kmod/netbsd/$src" -o "$out/nb-${src%.c}.o"; then
		echo "compiled $src: clang -target x86_64-unknown-netbsd -D_KERNEL -D_MODULE -ffreestanding -Wall -Werror"
	else
		fail "compile $src for NetBSD"
		glue_ok=0
	fi
done
if [ $glue_ok = 1 ]; then
	ld.lld -r -o "$out/dm.kmod.o" "$out/nb-dm_dev.o" "$out/nb-dm_glue.o" \
		"$out/x86_64-unknown-none/libdmkmod.a"
	cargo run --quiet -p kmod-tools --bin kobjfix -- "$out/dm.kmod.o"
	echo "linked the module object: ld.lld -r dm_dev.o dm_glue.o libdmkmod.a -> dm.kmod.o ($(stat -c %s "$out/dm.kmod.o") bytes)"
	echo "(dm_cd, dm_ca's tables: config(1)'s ioconf.c, generated by the real module build)"
	python3 "$here/inspect_lib.py" x86_64 "$out/dm.kmod.o" "$kmod/include/dmcore.h" --module ||
		fail "module object checks"
fi

# ------------------------------------------------------------------ 6: the flakey target module
step "the flakey target as a separate module (dm_target_flakey)"
for target in x86_64-unknown-none aarch64-unknown-none-softfloat; do
	start=$(date +%s)
	if ! flib=$(DMKMOD_PACKAGE=dm-target-flakey "$kmod/build-staticlib.sh" "$target" "$out/flakey-$target"); then
		fail "flakey module library for $target"
		continue
	fi
	echo "built $flib ($(stat -c %s "$flib") bytes, $(( $(date +%s) - start )) s)"
	echo "command: DMKMOD_PACKAGE=dm-target-flakey kmod/build-staticlib.sh $target"
	python3 "$here/inspect_lib.py" "${arch_of[$target]}" "$flib" "$kmod/include/dmcore.h" ||
		fail "flakey module library checks for $target"
done
if [ $glue_ok = 1 ] && [ -f "$out/flakey-x86_64-unknown-none/libdm_target_flakey.a" ]; then
	if clang "${nbflags[@]}" -c "$kmod/targets/flakey/netbsd/dm_target_flakey.c" -o "$out/nb-dm_target_flakey.o"; then
		echo "compiled dm_target_flakey.c: clang -target x86_64-unknown-netbsd -D_KERNEL -D_MODULE -ffreestanding -Wall -Werror"
		LD=ld.lld OBJCOPY=llvm-objcopy sh "$kmod/targets/flakey/module-object.sh" \
			"$out/flakey-x86_64-unknown-none/libdm_target_flakey.a" "$out/dm_target_flakey-rust.o"
		ld.lld -r -o "$out/dm_target_flakey.kmod.o" "$out/nb-dm_target_flakey.o" "$out/dm_target_flakey-rust.o"
		cargo run --quiet -p kmod-tools --bin kobjfix -- "$out/dm_target_flakey.kmod.o"
		echo "linked: kmod/targets/flakey/module-object.sh (ld -r, every symbol local but dm_target_flakey_ops), then ld.lld -r dm_target_flakey.o -> dm_target_flakey.kmod.o ($(stat -c %s "$out/dm_target_flakey.kmod.o") bytes)"
		python3 "$here/inspect_lib.py" x86_64 "$out/dm_target_flakey.kmod.o" "$kmod/include/dmcore.h" \
			--target-module "$out/dm.kmod.o" || fail "flakey module object checks"
	else
		fail "compile dm_target_flakey.c for NetBSD"
	fi
fi

# ------------------------------------------------------------------ 5: the glue on Linux
step "the glue on Linux, against the stand-in kernel, with the real core"
if [ ! -d "$golden" ]; then
	fail "recorded exchanges not found at $golden (set DM_GOLDEN)"
else
	cargo build --quiet -p dmkmod --profile kernel
	hostlib=$CARGO_TARGET_DIR/kernel/libdmkmod.a
	hb=$out/hosttest
	rm -rf "$hb" && mkdir -p "$hb/include"
	for h in sys/types.h sys/param.h sys/systm.h sys/buf.h sys/condvar.h sys/conf.h \
	    sys/container_of.h sys/cpu.h sys/device.h sys/disk.h sys/dkio.h sys/errno.h \
	    sys/fcntl.h sys/ioccom.h sys/kauth.h sys/kernel.h sys/kmem.h sys/kthread.h sys/lwp.h \
	    sys/module.h sys/mutex.h sys/namei.h sys/pool.h sys/proc.h sys/queue.h sys/time.h \
	    sys/vnode.h miscfs/specfs/specdev.h uvm/uvm_extern.h prop/proplib.h \
	    dev/dm/netbsd-dm.h; do
		mkdir -p "$hb/include/$(dirname "$h")"
		echo '#include "netbsd_kernel.h"' >"$hb/include/$h"
	done
	cp "$here/netbsd-include/ioconf.h" "$hb/include/"
	hflags=(-std=gnu99 -D_KERNEL -D_MODULE -ffreestanding -nostdinc -isystem "$resource"
		-I "$hb/include" -I "$kmod/hosttest" -I "$kmod/include" -I "$kmod/netbsd"
		-Wall -Werror -g -O1 -fsanitize=address -fno-omit-frame-pointer)
	objs=()
	for src in netbsd/dm_dev.c netbsd/dm_glue.c hosttest/standin.c hosttest/ioconf.c \
	    hosttest/test_glue.c; do
		o=$hb/$(basename "${src%.c}").o
		clang "${hflags[@]}" -c "$kmod/$src" -o "$o"
		objs+=("$o")
	done
	clang -std=gnu99 -Wall -Werror -g -O1 -fsanitize=address -c "$kmod/hosttest/host.c" -o "$hb/host.o"
	clang -fsanitize=address -o "$hb/test_glue" "${objs[@]}" "$hb/host.o" "$hostlib" \
		-lpthread -ldl -lm
	echo "built: kmod/netbsd/*.c (same sources, -Wall -Werror, AddressSanitizer) + kmod/hosttest + libdmkmod.a (host)"
	if ! ASAN_OPTIONS=detect_leaks=0 "$hb/test_glue" "$golden"; then
		fail "glue test on Linux"
	fi
fi

step "summary"
if [ $failures -eq 0 ]; then
	echo "kmod checks: all passed"
else
	echo "kmod checks: $failures failed"
	exit 1
fi
