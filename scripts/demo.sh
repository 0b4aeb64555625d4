#!/usr/bin/env bash
# The demonstration (`make demo`): the device-mapper core in user space (dmhost) on three image
# files, a linear volume built with NetBSD dmctl's syntax and a striped one with dmsetup's,
# written and read through NBD by qemu-io, then what dmctl reports and the bytes found in the
# image files. Everything happens in a temporary directory that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

bold=$'\e[1m' dim=$'\e[2m' off=$'\e[0m'
[ -t 1 ] || bold='' dim='' off=''
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }
say() { printf '%s\n' "$*" | fmt -w 100; }

# Runs a command, showing it as typed (with the name given first) and its output indented.
show() {
  local name=$1
  shift
  printf '%s$ %s%s\n' "$dim" "$name" "$off"
  local status=0
  "$@" 2>&1 | sed 's/^/    /' || status=$?
  [ "$status" = 0 ] || { echo "demo: command failed ($status): $name" >&2; exit 1; }
}

if ! command -v qemu-io >/dev/null 2>&1; then
  bash scripts/install-deps.sh
fi
command -v qemu-io >/dev/null 2>&1 || {
  echo "demo: qemu-io is missing: install Debian's qemu-utils (bash scripts/install-deps.sh as root)" >&2
  exit 1
}
command -v cargo >/dev/null 2>&1 || { echo "demo: cargo is missing: install Rust (rustup.rs)" >&2; exit 1; }

step "Building dmhost and dmctl (release)"
cargo build --release --quiet -p dmhost -p dmctl
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
DMHOST="$target_dir/release/dmhost"
DMCTL="$target_dir/release/dmctl"
say "built $("$DMHOST" --version) in $target_dir/release"

work=$(mktemp -d "${TMPDIR:-/tmp}/dm-demo.XXXXXX")
dmhost_pid=
cleanup() {
  if [ -n "$dmhost_pid" ] && kill -0 "$dmhost_pid" 2>/dev/null; then
    kill -TERM "$dmhost_pid" 2>/dev/null || true
    wait "$dmhost_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
ln -s "$DMCTL" dmsetup
export DM_CONTROL="unix:$work/control.sock"
dmctl() { "$DMCTL" "$@"; }
dmsetup() { "$work/dmsetup" "$@"; }
nbd() { printf 'nbd+unix:///%s?socket=%s' "$1" "$work/nbd.sock"; }

step "Three image files of 64 MiB in $work"
for f in a b c; do truncate -s 64M "$f.img"; done
show "ls -l *.img" ls -l a.img b.img c.img

step "Starting dmhost"
say "Each --disk becomes a lower device, numbered as Linux numbers virtio disks: a.img = 254:0, b.img = 254:16, c.img = 254:32. dmhost prints one line when it is listening."
printf '%s$ dmhost --control control.sock --nbd-socket nbd.sock --disk a.img --disk b.img --disk c.img%s\n' "$dim" "$off"
coproc DMHOST_PROC { exec "$DMHOST" -v --control "$work/control.sock" --nbd-socket "$work/nbd.sock" \
  --disk "$work/a.img" --disk "$work/b.img" --disk "$work/c.img" 2>"$work/dmhost.log"; }
dmhost_pid=$DMHOST_PROC_PID
if ! read -r -t 60 ready <&"${DMHOST_PROC[0]}"; then
  echo "demo: dmhost did not start:" >&2
  cat "$work/dmhost.log" >&2
  exit 1
fi
echo "    $ready"

step "A linear volume 'lin', with NetBSD dmctl's syntax"
say "4 MiB: the first 2 MiB are a.img from 1 MiB on, the next 2 MiB are b.img from 0 (lengths and offsets in 512-byte sectors; a disk by path or by number)."
cat >lin.table <<EOF
0 4096 linear $work/a.img 2048
4096 4096 linear 254:16 0
EOF
show "cat lin.table" cat lin.table
show "dmctl create lin" dmctl create lin
show "dmctl load lin lin.table" dmctl load lin lin.table
show "dmctl resume lin" dmctl resume lin

step "A striped volume 'str', with dmsetup's syntax"
say "24 MiB striped over the three images in 64 KiB chunks (128 sectors), each stripe from 8 MiB on: chunk 0 on a.img, 1 on b.img, 2 on c.img, 3 on a.img again, ..."
str_table="0 49152 striped 3 128 254:0 16384 254:16 16384 254:32 16384"
show "dmsetup create str --table '$str_table'" dmsetup create str --table "$str_table"

step "Writing through NBD with qemu-io"
say "Every mapped device is an NBD export named like the device."
show "qemu-io -f raw -c 'write -P 0x11 0 2M' -c 'write -P 0x22 2M 2M' '$(nbd lin)'" \
  qemu-io -f raw -c 'write -P 0x11 0 2M' -c 'write -P 0x22 2M 2M' "$(nbd lin)"
args=()
for i in 0 1 2 3 4 5; do args+=(-c "write -P 0x3$i $((i * 64))k 64k"); done
show "qemu-io -f raw -c 'write -P 0x30 0 64k' -c 'write -P 0x31 64k 64k' ... -c 'write -P 0x35 320k 64k' '$(nbd str)'" \
  qemu-io -f raw "${args[@]}" "$(nbd str)"

step "Reading them back through NBD (qemu-io checks every byte against the pattern)"
verify() {
  local out
  out=$(qemu-io -f raw "$@" 2>&1)
  printf '%s\n' "$out"
  if grep -q -i -e 'fail' -e 'error' <<<"$out"; then exit 1; fi
}
show "qemu-io -f raw -c 'read -P 0x11 0 2M' -c 'read -P 0x22 2M 2M' '$(nbd lin)'" \
  verify -c 'read -P 0x11 0 2M' -c 'read -P 0x22 2M 2M' "$(nbd lin)"
args=()
for i in 0 1 2 3 4 5; do args+=(-c "read -P 0x3$i $((i * 64))k 64k"); done
show "qemu-io -f raw -c 'read -P 0x30 0 64k' ... -c 'read -P 0x35 320k 64k' '$(nbd str)'" verify "${args[@]}" "$(nbd str)"

step "What dmctl reports, NetBSD syntax"
show "dmctl ls" dmctl ls
show "dmctl info lin" dmctl info lin
show "dmctl table lin" dmctl table lin
show "dmctl status str" dmctl status str
show "dmctl deps str" dmctl deps str

step "The same devices, dmsetup syntax (the same binary, called as dmsetup)"
show "dmsetup ls" dmsetup ls
show "dmsetup info str" dmsetup info str
show "dmsetup table" dmsetup table
show "dmsetup status" dmsetup status
show "dmsetup deps lin" dmsetup deps lin

step "The bytes in the image files"
say "od prints the offset in the file (decimal), then the bytes in hex."
MiB=$((1024 * 1024))
bytes_at() { # FILE OFFSET LENGTH DESCRIPTION
  printf '%s%s, %s:%s\n' "$dim" "$1" "$4" "$off"
  od -A d -t x1 -j "$2" -N "$3" "$1" | sed -e '$d' -e 's/^/    /'
}
say "lin: its first 2 MiB (0x11) are in a.img from 1 MiB on, with zeroes before; its next 2 MiB (0x22) are at the start of b.img."
bytes_at a.img $((MiB - 16)) 32 "16 bytes before 1 MiB and 16 after"
bytes_at a.img $((3 * MiB - 16)) 32 "16 bytes before 3 MiB and 16 after"
bytes_at b.img 0 16 "the first 16 bytes"
say "str: its 64 KiB chunks 0x30..0x35 went round-robin over the three images, each stripe from 8 MiB on."
for f in a b c; do
  bytes_at "$f.img" $((8 * MiB)) 16 "at 8 MiB (the stripe's first chunk)"
  bytes_at "$f.img" $((8 * MiB + 64 * 1024)) 16 "at 8 MiB + 64 KiB (its second chunk)"
done

step "Stopping dmhost with SIGTERM"
say "It stops accepting, lets I/O in flight finish, syncs the image files, removes its sockets and exits 0."
printf '%s$ kill -TERM %s%s\n' "$dim" "$dmhost_pid" "$off"
kill -TERM "$dmhost_pid"
status=0
wait "$dmhost_pid" || status=$?
dmhost_pid=
echo "    dmhost exited with status $status"
printf '%sdmhost'"'"'s log:%s\n' "$dim" "$off"
sed 's/^/    /' "$work/dmhost.log"
[ "$status" = 0 ] || { echo "demo: dmhost did not exit cleanly" >&2; exit 1; }
[ ! -e "$work/control.sock" ] && [ ! -e "$work/nbd.sock" ] || { echo "demo: dmhost left its sockets" >&2; exit 1; }

step "Done"
say "The temporary directory is removed now. 'make test' runs every test, including the end-to-end ones in tests/e2e."
