#!/bin/sh
# run-dmhost.sh: runs the dm(4) atf test programs against dmhost on this machine.
#
#   tests/atf/run-dmhost.sh [--harness kyua|builtin] [--no-build] [--keep] [--disks N]
#                           [--disk-size MIB] [PROGRAM[:CASE]]...
#
# Builds dmhost and dmctl (cargo, debug profile) unless --no-build or DMHOST/DMCTL name
# binaries, makes N image files (default 4, 64 MiB each, sparse), starts dmhost on them with a
# control socket and an NBD socket, exports the settings lib/dmtest.subr reads
# (DM_TEST_PLATFORM=dmhost, DM_CONTROL, DMHOST_NBD_SOCKET, DMHOST_DISKS, DMCTL, DMSETUP) and runs
# every test program of Kyuafile (or those named) with kyua. Without kyua (or with
# --harness builtin) a small harness of this script runs each test case's body and cleanup
# the way atf's runners do and reads its result file.
#
# Prints one line per test case and at the end "atf: N passed, N failed, N skipped".
# Exits 0 when nothing failed. The work directory (images, sockets, dmhost's log, kyua's
# results) is removed unless --keep or a failure.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

harness=
build=yes
keep=no
ndisks=4
disk_mib=64
selected=
while [ $# -gt 0 ]; do
	case "$1" in
	--harness) harness=$2; shift 2 ;;
	--harness=*) harness=${1#*=}; shift ;;
	--no-build) build=no; shift ;;
	--keep) keep=yes; shift ;;
	--disks) ndisks=$2; shift 2 ;;
	--disk-size) disk_mib=$2; shift 2 ;;
	-h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run-dmhost.sh: unknown option $1" >&2; exit 2 ;;
	*) selected="$selected $1"; shift ;;
	esac
done
if [ -z "$harness" ]; then
	if command -v kyua >/dev/null 2>&1; then harness=kyua; else harness=builtin; fi
fi
case "$harness" in
kyua) command -v kyua >/dev/null 2>&1 || { echo "run-dmhost.sh: kyua not found" >&2; exit 2; } ;;
builtin) ;;
*) echo "run-dmhost.sh: --harness kyua|builtin" >&2; exit 2 ;;
esac
command -v atf-sh >/dev/null 2>&1 ||
    { echo "run-dmhost.sh: atf-sh not found (Debian package atf-sh; scripts/install-deps.sh)" >&2; exit 2; }

if [ -z "${DMHOST:-}" ] || [ -z "${DMCTL:-}" ]; then
	if [ $build = yes ]; then
		(cd "$root" && cargo build --quiet -p dmhost -p dmctl)
	fi
	target_dir=${CARGO_TARGET_DIR:-$root/target}
	: "${DMHOST:=$target_dir/debug/dmhost}"
	: "${DMCTL:=$target_dir/debug/dmctl}"
fi
for b in "$DMHOST" "$DMCTL"; do
	[ -x "$b" ] || { echo "run-dmhost.sh: $b is not an executable" >&2; exit 2; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/dm-atf.XXXXXX")
dmhost_pid=
stop_dmhost()
{
	if [ -n "$dmhost_pid" ] && kill -0 "$dmhost_pid" 2>/dev/null; then
		kill -TERM "$dmhost_pid" 2>/dev/null || true
		i=0
		while kill -0 "$dmhost_pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$dmhost_pid" 2>/dev/null || true
	fi
	dmhost_pid=
}
trap 'stop_dmhost' EXIT
trap 'stop_dmhost; exit 130' INT TERM

disks=
disk_args=
i=0
while [ $i -lt "$ndisks" ]; do
	img=$work/disk$i.img
	dd if=/dev/zero of="$img" bs=1048576 seek="$disk_mib" count=0 2>/dev/null
	disks="$disks $img"
	disk_args="$disk_args --disk $img"
	i=$((i + 1))
done
disks=${disks# }

# shellcheck disable=SC2086
"$DMHOST" --control "$work/control.sock" --nbd-socket "$work/nbd.sock" $disk_args \
    >"$work/dmhost.out" 2>"$work/dmhost.log" &
dmhost_pid=$!
i=0
until grep -q '^dmhost ready' "$work/dmhost.out" 2>/dev/null; do
	if ! kill -0 "$dmhost_pid" 2>/dev/null || [ $i -ge 300 ]; then
		echo "run-dmhost.sh: dmhost did not start:" >&2
		cat "$work/dmhost.log" >&2
		exit 1
	fi
	sleep 0.1
	i=$((i + 1))
done
echo "run-dmhost.sh: $(cat "$work/dmhost.out") ($ndisks disks of $disk_mib MiB in $work)"

DM_TEST_PLATFORM=dmhost
DM_CONTROL=unix:$work/control.sock
DMHOST_NBD_SOCKET=$work/nbd.sock
DMHOST_DISKS=$disks
DMSETUP="$DMCTL setup"
export DM_TEST_PLATFORM DM_CONTROL DMHOST_NBD_SOCKET DMHOST_DISKS DMCTL DMSETUP

programs=
for tp in $(sed -n 's/^atf_test_program{name="\([^"]*\)".*/\1/p' "$here/Kyuafile"); do
	programs="$programs $tp"
done

results=$work/results.txt
: >"$results"

# ---- kyua --------------------------------------------------------------------------------
run_kyua()
{
	# kyua takes test filters relative to the Kyuafile's directory: t_io or t_io:linear.
	# shellcheck disable=SC2086
	(cd "$here" && kyua --config=none --logfile="$work/kyua.log" \
	    test --kyuafile=Kyuafile --results-file="$work/kyua.db" $selected) \
	    >"$work/kyua.out" 2>&1 || true
	# kyua repeats the failed cases in a summary at the end: keep each case once.
	sed -n 's/^\(t_[^ ]*  ->  .*\)$/\1/p' "$work/kyua.out" | awk '!seen[$1]++' >"$work/kyua.lines"
	sed 's/^\([^ ]*\)  ->  \([a-z_]*\).*$/\1 \2/; s/ expected_[a-z_]*$/ xfail/' \
	    "$work/kyua.lines" >"$results"
	cat "$work/kyua.lines"
	(cd "$here" && kyua --config=none report --results-file="$work/kyua.db" --verbose \
	    --results-filter=broken,failed) >"$work/kyua-report.txt" 2>&1 || true
}

# ---- builtin harness -----------------------------------------------------------------------
# For each test case: `PROGRAM -l` lists it (ident, has.cleanup, timeout); the body runs as
# `PROGRAM -s SRCDIR -r RESULT CASE:body` in a fresh directory, then the cleanup part
# `CASE:cleanup` in the same directory; RESULT's first line is passed|skipped: why|failed: why|...
run_builtin()
{
	local tp tc cleanup timeout dir res status line
	for tp in $programs; do
		case " $selected " in
		"  ") ;;
		*" $tp "*|*" $tp:"*) ;;
		*) continue ;;
		esac
		"$here/$tp" -l >"$work/$tp.list" 2>&1 || { echo "$tp broken" >>"$results"; echo "$tp  ->  broken: cannot list"; continue; }
		tc=
		while IFS= read -r line || [ -n "$line" ]; do
			case "$line" in
			"ident: "*) tc=${line#ident: }; cleanup=false; timeout=300 ;;
			"has.cleanup: true") cleanup=true ;;
			"timeout: "*) timeout=${line#timeout: } ;;
			"")
				[ -n "$tc" ] && run_builtin_case "$tp" "$tc" "$cleanup" "$timeout"
				tc= ;;
			esac
		done <"$work/$tp.list"
		[ -n "$tc" ] && run_builtin_case "$tp" "$tc" "$cleanup" "$timeout"
	done
}

run_builtin_case()
{
	local tp=$1 tc=$2 cleanup=$3 timeout=$4 dir res first
	case " $selected " in
	"  "|*" $tp "*|*" $tp:$tc "*) ;;
	*) return 0 ;;
	esac
	dir=$work/run/$tp.$tc
	mkdir -p "$dir"
	res=$dir/.result
	(cd "$dir" && __RUNNING_INSIDE_ATF_RUN=internal-yes-value HOME=$dir \
	    timeout "$timeout" "$here/$tp" -s "$here" -r "$res" "$tc:body") \
	    >"$dir/.stdout" 2>"$dir/.stderr" || true
	if [ "$cleanup" = true ]; then
		(cd "$dir" && __RUNNING_INSIDE_ATF_RUN=internal-yes-value HOME=$dir \
		    timeout 120 "$here/$tp" -s "$here" "$tc:cleanup") >>"$dir/.stdout" 2>>"$dir/.stderr" || true
	fi
	first=$(head -n 1 "$res" 2>/dev/null || echo "broken: no result file (timed out or crashed)")
	case "$first" in
	passed*) echo "$tp:$tc passed" >>"$results" ;;
	skipped*) echo "$tp:$tc skipped" >>"$results" ;;
	expected_*) echo "$tp:$tc xfail" >>"$results" ;;
	failed*) echo "$tp:$tc failed" >>"$results" ;;
	*) echo "$tp:$tc broken" >>"$results" ;;
	esac
	echo "$tp:$tc  ->  $first"
	case "$first" in
	failed*|broken*) { echo "===> $tp:$tc"; cat "$dir/.stdout" "$dir/.stderr"; } >>"$work/builtin-report.txt" ;;
	esac
}

echo "run-dmhost.sh: harness $harness"
if [ "$harness" = kyua ]; then run_kyua; else run_builtin; fi

stop_dmhost

passed=$(grep -c ' passed$' "$results" || true)
skipped=$(grep -c ' skipped$' "$results" || true)
xfail=$(grep -c ' xfail$' "$results" || true)
failed=$(grep -c -E ' (failed|broken)$' "$results" || true)
total=$((passed + skipped + xfail + failed))

if [ "$failed" -gt 0 ] || [ "$total" -eq 0 ]; then
	for f in "$work/kyua-report.txt" "$work/builtin-report.txt"; do
		[ -f "$f" ] && cat "$f"
	done
	echo "--- dmhost log (last 40 lines):"
	tail -n 40 "$work/dmhost.log"
	keep=yes
fi
if [ $keep = yes ]; then
	echo "run-dmhost.sh: work directory kept: $work"
else
	rm -rf "$work"
fi
echo "atf: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$total" -gt 0 ]
