#!/usr/bin/env bash
# Installs what the demonstration and the tests need, when it is missing. Safe to re-run.
set -euo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }
have qemu-io || need_apt+=(qemu-utils)
# `install-deps.sh bench`: also what scripts/bench-nbd.sh needs: fio (its nbd engine) and qemu-nbd.
if [ "${1:-}" = bench ]; then
  have fio || need_apt+=(fio)
  have qemu-nbd || [[ " ${need_apt[*]} " == *" qemu-utils "* ]] || need_apt+=(qemu-utils)
fi
# bindgen (kmod/rust) needs libclang; the kernel checks need clang, lld and llvm's tools.
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || need_apt+=(libclang-dev)
have clang || need_apt+=(clang)
have ld.lld || need_apt+=(lld)
have llvm-objdump || need_apt+=(llvm)
have readelf || need_apt+=(binutils)
# The atf tests (tests/atf) run with atf-sh under kyua; the manual pages are checked by mandoc.
have atf-sh || need_apt+=(atf-sh)
have kyua || need_apt+=(kyua)
have mandoc || need_apt+=(mandoc)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "install-deps: missing ${need_apt[*]} (run as root, or install them)" >&2
  fi
fi

# The kernel targets and the sources of core/alloc (rebuilt for the kernel, kmod/).
installed=$(rustup target list --installed)
for t in x86_64-unknown-none aarch64-unknown-none-softfloat; do
  grep -qx "$t" <<<"$installed" || rustup target add "$t"
done
rustup component list --installed | grep -q '^rust-src' || rustup component add rust-src
