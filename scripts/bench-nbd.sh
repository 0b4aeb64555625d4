#!/usr/bin/env bash
# NBD throughput: dmhost (one linear target over a raw image file) against qemu-nbd serving the
# same file, both buffered (page cache, writeback), both over Unix sockets, measured by the same
# client: fio's nbd engine (libnbd), one connection per run.
#
#   bash scripts/bench-nbd.sh            # 1 GiB image, 10 s per run, 3 rounds
#   SIZE=4G RUNTIME=20 ROUNDS=5 bash scripts/bench-nbd.sh
#   WORKLOADS="randread randwrite" bash scripts/bench-nbd.sh
#
# Workloads (fio names): seqread and seqwrite (1 MiB requests at queue depth 1 and 16),
# randread and randwrite (4 KiB at queue depth 16). Each round runs every workload on both
# servers, alternating which goes first; the table shows the median over the rounds of MB/s
# (10^6 bytes per second) and IOPS, the server's CPU time per request (user + system, from
# /proc, which is less sensitive than throughput to other load on the machine), and the ratio
# dmhost/qemu-nbd of the throughput.
#
# Needs: cargo, fio with the nbd engine and qemu-nbd (Debian: fio, qemu-utils; installed by
# scripts/install-deps.sh bench when run as root). Environment: SIZE (image size, default 1G),
# RUNTIME (seconds per run, 10), RAMP (seconds not measured at the start of a run, 2), ROUNDS
# (3), WORKLOADS, IO_THREADS (dmhost --io-threads, its default when unset), BENCH_DIR (where the
# image goes; a temporary directory by default), OUT (also write the table to this file).
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-1G}
RUNTIME=${RUNTIME:-10}
RAMP=${RAMP:-2}
ROUNDS=${ROUNDS:-3}
WORKLOADS=${WORKLOADS:-"seqread seqwrite seqread16 seqwrite16 randread randwrite"}

need_deps=0
command -v fio >/dev/null 2>&1 || need_deps=1
command -v qemu-nbd >/dev/null 2>&1 || need_deps=1
if [ $need_deps = 1 ]; then
  bash scripts/install-deps.sh bench
fi
for tool in fio qemu-nbd cargo; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench-nbd: $tool is missing" >&2; exit 1; }
done
fio --enghelp=nbd >/dev/null 2>&1 || { echo "bench-nbd: this fio has no nbd engine (libnbd)" >&2; exit 1; }

echo "building dmhost and dmctl (release)..." >&2
cargo build --release --quiet -p dmhost -p dmctl
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
DMHOST="$target_dir/release/dmhost"
DMCTL="$target_dir/release/dmctl"

work=$(mktemp -d "${BENCH_DIR:-${TMPDIR:-/tmp}}/bench-nbd.XXXXXX")
dmhost_pid=
qemu_pid=
cleanup() {
  if [ -n "$dmhost_pid" ]; then kill -TERM "$dmhost_pid" 2>/dev/null && wait "$dmhost_pid" 2>/dev/null || true; fi
  if [ -n "$qemu_pid" ]; then kill -TERM "$qemu_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

img="$work/disk.img"
echo "filling a $SIZE image with random bytes..." >&2
bytes=$(numfmt --from=iec "$SIZE")
head -c "$bytes" /dev/urandom >"$img"
sectors=$((bytes / 512))

# dmhost: ready when it prints its ready line.
coproc DMHOST_PROC { exec "$DMHOST" -q --control "$work/control.sock" --nbd-socket "$work/dmhost.sock" \
  --disk "$img" ${IO_THREADS:+--io-threads "$IO_THREADS"}; }
dmhost_pid=$DMHOST_PROC_PID
read -r -t 60 ready <&"${DMHOST_PROC[0]}" || { echo "bench-nbd: dmhost did not start" >&2; exit 1; }
case "$ready" in "dmhost ready "*) ;; *) echo "bench-nbd: unexpected: $ready" >&2; exit 1 ;; esac
DM_CONTROL="unix:$work/control.sock" "$DMCTL" setup create lin --table "0 $sectors linear 254:0 0"

# qemu-nbd: --fork returns once the server is listening.
qemu-nbd -f raw -t -k "$work/qemu.sock" -x lin --cache=writeback --aio=threads \
  --fork --pid-file "$work/qemu.pid" "$img"
qemu_pid=$(cat "$work/qemu.pid")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run SERVER WORKLOAD -> "MBps IOPS cpu_us_per_op"
run() {
  local server=$1 workload=$2 sock pid rw bs qd
  case $server in
    dmhost) sock="$work/dmhost.sock"; pid=$dmhost_pid ;;
    qemu-nbd) sock="$work/qemu.sock"; pid=$qemu_pid ;;
  esac
  case $workload in
    seqread) rw=read bs=1M qd=1 ;;
    seqwrite) rw=write bs=1M qd=1 ;;
    seqread16) rw=read bs=1M qd=16 ;;
    seqwrite16) rw=write bs=1M qd=16 ;;
    randread) rw=randread bs=4k qd=16 ;;
    randwrite) rw=randwrite bs=4k qd=16 ;;
    *) echo "bench-nbd: unknown workload $workload" >&2; exit 1 ;;
  esac
  sync
  local before after
  before=$(cpu_ticks "$pid")
  local terse
  terse=$(fio --name="$workload" --ioengine=nbd --uri="nbd+unix:///lin?socket=$sock" \
    --rw="$rw" --bs="$bs" --iodepth="$qd" --size="$bytes" --time_based --runtime="$RUNTIME" \
    --ramp_time="$RAMP" --output-format=terse --terse-version=3 2>/dev/null | grep -v '^fio:' | tail -1)
  after=$(cpu_ticks "$pid")
  local hz
  hz=$(getconf CLK_TCK)
  echo "$terse" | awk -F';' -v rw="$rw" -v t=$((after - before)) -v hz="$hz" -v secs=$((RUNTIME + RAMP)) '{
    if (rw ~ /read/) { bw = $7; iops = $8 } else { bw = $48; iops = $49 }
    ops = iops * secs
    printf "%.1f %.0f %.1f\n", bw * 1024 / 1e6, iops, (ops > 0 ? t / hz * 1e6 / ops : 0)
  }'
}

median() { sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }

declare -A results
for round in $(seq 1 "$ROUNDS"); do
  for workload in $WORKLOADS; do
    if [ $((round % 2)) = 1 ]; then order="dmhost qemu-nbd"; else order="qemu-nbd dmhost"; fi
    for server in $order; do
      r=$(run "$server" "$workload")
      results[$server,$workload]+="$r"$'\n'
      echo "round $round/$ROUNDS $workload $server: $r (MB/s IOPS cpu-us/op)" >&2
    done
  done
done

label() {
  case $1 in
    seqread) echo "sequential read, 1 MiB, QD 1" ;;
    seqwrite) echo "sequential write, 1 MiB, QD 1" ;;
    seqread16) echo "sequential read, 1 MiB, QD 16" ;;
    seqwrite16) echo "sequential write, 1 MiB, QD 16" ;;
    randread) echo "random read, 4 KiB, QD 16" ;;
    randwrite) echo "random write, 4 KiB, QD 16" ;;
  esac
}

table=$(
  echo "| workload | dmhost MB/s | dmhost IOPS | qemu-nbd MB/s | qemu-nbd IOPS | ratio dmhost/qemu-nbd | CPU µs/op dmhost | CPU µs/op qemu-nbd |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for workload in $WORKLOADS; do
    d_mb=$(printf '%s' "${results[dmhost,$workload]}" | awk '{print $1}' | median)
    d_io=$(printf '%s' "${results[dmhost,$workload]}" | awk '{print $2}' | median)
    d_cpu=$(printf '%s' "${results[dmhost,$workload]}" | awk '{print $3}' | median)
    q_mb=$(printf '%s' "${results[qemu-nbd,$workload]}" | awk '{print $1}' | median)
    q_io=$(printf '%s' "${results[qemu-nbd,$workload]}" | awk '{print $2}' | median)
    q_cpu=$(printf '%s' "${results[qemu-nbd,$workload]}" | awk '{print $3}' | median)
    ratio=$(awk -v d="$d_io" -v q="$q_io" 'BEGIN { printf "%.2f", (q > 0 ? d / q : 0) }')
    echo "| $(label "$workload") | $d_mb | $d_io | $q_mb | $q_io | $ratio | $d_cpu | $q_cpu |"
  done
)

{
  echo
  echo "image $SIZE raw, page cache (qemu-nbd --cache=writeback --aio=threads; dmhost buffered pread/pwrite)"
  echo "fio $(fio --version | sed 's/^fio-//') nbd engine, 1 connection, ${RUNTIME}s + ${RAMP}s ramp per run, median of $ROUNDS rounds"
  echo "$("$DMHOST" --version), $(qemu-nbd --version | head -1), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "$table"
} | tee ${OUT:+"$OUT"}
