#!/bin/sh
# run-netbsd.sh: runs the dm(4) atf test programs on a NetBSD machine, as root.
#
#   sh tests/atf/run-netbsd.sh [--kmod PATH] [--dmctl PATH] [--runner kyua|atf]
#                              [--results DIR] [PROGRAM[:CASE]]...
#
# --kmod PATH   load PATH (the project's dm.kmod) in place of the running dm module: the stock
#               module is unloaded first (modunload dm); a dm built into the kernel cannot be
#               replaced and is an error
# --dmctl PATH  use the project's dmctl (built for NetBSD) instead of the base system's
#               /sbin/dmctl; its `setup` front end then also serves the dmsetup checks
# --runner      kyua when kyua(1) is installed, else atf-run(1) piped into atf-report(1)
# --results DIR where the reports go (default ./dm-atf-results): system.txt, modstat.txt,
#               the runner's raw output and reports, dmesg.txt, summary.txt
#
# The last line printed (and summary.txt) is "atf: N passed, N failed, N skipped". Exits 0
# when no test case failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
kmod=
dmctl=
runner=
results=$(pwd)/dm-atf-results
selected=
while [ $# -gt 0 ]; do
	case "$1" in
	--kmod) kmod=$2; shift 2 ;;
	--dmctl) dmctl=$2; shift 2 ;;
	--runner) runner=$2; shift 2 ;;
	--results) results=$2; shift 2 ;;
	-h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run-netbsd.sh: unknown option $1" >&2; exit 2 ;;
	*) selected="$selected $1"; shift ;;
	esac
done

die() { echo "run-netbsd.sh: $*" >&2; echo "run-netbsd.sh: $*" >>"$results/errors.txt"; exit 1; }

mkdir -p "$results" || exit 1
results=$(cd "$results" && pwd)
[ "$(uname -s)" = NetBSD ] || die "this is $(uname -s), not NetBSD (use run-dmhost.sh elsewhere)"
[ "$(id -u)" = 0 ] || die "must run as root"
{ uname -a; sysctl kern.version kern.rawpartition; } >"$results/system.txt" 2>&1

# dm_source: how the dm module is present: builtin, boot, filesys, or nothing.
dm_source()
{
	modstat dm 2>/dev/null | awk '$1 == "dm" { print $3 }'
}

if [ -n "$kmod" ]; then
	[ -f "$kmod" ] || die "no module file $kmod"
	case "$(dm_source)" in
	builtin) die "dm(4) is built into this kernel; it cannot be replaced by $kmod" ;;
	"") ;;
	*) modunload dm || die "modunload dm failed (mapped devices left? dmctl ls)" ;;
	esac
	modload "$kmod" || die "modload $kmod failed (built for another kernel version?)"
	echo "run-netbsd.sh: loaded $kmod"
fi
modstat >"$results/modstat.txt" 2>&1
sysctl kern.drivers 2>/dev/null | tr ',' '\n' | grep -w dm >>"$results/modstat.txt"

DM_TEST_PLATFORM=netbsd
export DM_TEST_PLATFORM
if [ -n "$dmctl" ]; then
	[ -x "$dmctl" ] || die "$dmctl is not executable"
	DMCTL=$(cd "$(dirname "$dmctl")" && pwd)/$(basename "$dmctl")
	DMSETUP="$DMCTL setup"
	export DMCTL DMSETUP
fi

if [ -z "$runner" ]; then
	if command -v kyua >/dev/null 2>&1; then runner=kyua; else runner=atf; fi
fi
cd "$here" || exit 1
status=0
case "$runner" in
kyua)
	# Older kyua (NetBSD's base system) names the results database --store.
	if kyua help test 2>&1 | grep -q -- --results-file; then db=--results-file; else db=--store; fi
	# shellcheck disable=SC2086
	kyua --logfile="$results/kyua.log" test --kyuafile=Kyuafile "$db=$results/kyua.db" \
	    $selected >"$results/kyua.out" 2>&1 || status=1
	cat "$results/kyua.out"
	kyua report "$db=$results/kyua.db" --verbose >"$results/report.txt" 2>&1
	kyua report-junit "$db=$results/kyua.db" --output="$results/report.junit.xml" 2>/dev/null
	passed=$(grep -c -- '->  passed' "$results/kyua.out")
	skipped=$(grep -c -- '->  skipped' "$results/kyua.out")
	failed=$(grep -c -E -- '->  (failed|broken)' "$results/kyua.out")
	;;
atf)
	command -v atf-run >/dev/null 2>&1 || die "neither kyua nor atf-run is installed (install the tests set)"
	# atf-run runs the programs of the Atffile (all of them; it takes program names too).
	# shellcheck disable=SC2086
	{ atf-run $selected; echo $? >"$results/atf-run.status"; } | tee "$results/atf-run.tps" |
	    atf-report -o ticker:- -o ticker:"$results/report.txt" -o xml:"$results/report.xml"
	[ "$(cat "$results/atf-run.status")" = 0 ] || status=1
	passed=$(grep -c '^tc-end: .*, passed$' "$results/atf-run.tps")
	skipped=$(grep -c '^tc-end: .*, skipped,' "$results/atf-run.tps")
	failed=$(grep -c -E '^tc-end: .*, (failed|broken)' "$results/atf-run.tps")
	;;
*)
	die "--runner kyua|atf"
	;;
esac
dmesg >"$results/dmesg.txt" 2>&1
summary="atf: $passed passed, $failed failed, $skipped skipped"
echo "$summary" >"$results/summary.txt"
echo "$summary"
[ "$failed" -eq 0 ] && exit $status
exit 1
