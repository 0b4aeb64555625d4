#!/usr/bin/env bash
# Differential tests against Linux's own device-mapper: builds the oracle VM from Debian's
# packages (../shared/linux-dm-oracle, once per target directory) and runs the tests that load
# the same tables into Linux 6.1 in QEMU and into the core, and move snapshot COW devices both
# ways. Fails if any of them skipped: here a skip would hide a missing tool, not a choice.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
oracle=${DM_ORACLE_DIR:-$root/../shared/linux-dm-oracle}
export ORACLE_WORK=${ORACLE_WORK:-${CARGO_TARGET_DIR:-$root/target}/linux-dm-oracle}

have() { command -v "$1" >/dev/null 2>&1; }
need=()
have qemu-system-x86_64 || need+=(qemu-system-x86)
have cpio || need+=(cpio)
have xz || need+=(xz-utils)
have dpkg-deb || need+=(dpkg)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's QEMU system package may replace a newer qemu-utils; the other stages need qemu-io.
have qemu-io || apt-get install -y -qq --no-install-recommends qemu-utils >/dev/null

if [ ! -f "$ORACLE_WORK/out/initramfs.img" ]; then
  apt-get update -qq
  "$oracle/build.sh"
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
DM_ORACLE=1 cargo test -p dmcore --test linux_oracle --test snapshot_oracle -- --nocapture --test-threads 1 2>&1 | tee "$log"
if grep -Eq '^(SKIP|SKIPPED)' "$log"; then
  echo "oracle: a differential test skipped (see above)" >&2
  exit 1
fi
