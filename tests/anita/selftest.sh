#!/bin/sh
# selftest.sh: checks run-anita.py without network or VM (CI): its dry run accepts good inputs
# and refuses bad ones, and the bundle and results disks it makes and reads work with tar.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/anita-selftest.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
py=${PYTHON:-python3}
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }
bad() { fail=$((fail + 1)); echo "FAILED: $*"; }

# expect STATUS DESCRIPTION ARGS...: run-anita.py ARGS exits with STATUS.
expect()
{
	want=$1 what=$2
	shift 2
	set +e
	"$py" "$here/run-anita.py" "$@" >"$tmp/out" 2>&1
	got=$?
	set -e
	if [ "$got" = "$want" ]; then ok "$what"; else bad "$what: exit $got, want $want"; cat "$tmp/out"; fi
}

# A minimal amd64 ELF relocatable with the sections a NetBSD module has.
"$py" - "$tmp" <<'PY'
import struct, sys, os
d = sys.argv[1]
def elf(path, version, machine=62, etype=1, modules=True):
    names = [b"", b".shstrtab", b".note.netbsd.ident"] + ([b"link_set_modules"] if modules else [])
    strtab = b"\0".join(names) + b"\0"
    offs, o = [], 0
    for n in names:
        offs.append(o); o += len(n) + 1
    note = struct.pack("<III", 7, 4, 1) + b"NetBSD\0\0" + struct.pack("<I", version)
    body = strtab + b"\0" * (-len(strtab) % 8) + note + b"\0" * (-len(note) % 8)
    note_off = 64 + len(strtab) + (-len(strtab) % 8)
    shoff = 64 + len(body)
    sh = [struct.pack("<IIQQQQIIQQ", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
          struct.pack("<IIQQQQIIQQ", offs[1], 3, 0, 0, 64, len(strtab), 0, 0, 1, 0),
          struct.pack("<IIQQQQIIQQ", offs[2], 7, 2, 0, note_off, len(note), 0, 0, 4, 0)]
    if modules:
        sh.append(struct.pack("<IIQQQQIIQQ", offs[3], 1, 3, 0, 64, 0, 0, 0, 8, 0))
    hdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8 + struct.pack(
        "<HHIQQQIHHHHHH", etype, machine, 1, 0, 0, shoff, 0, 64, 0, 0, 64, len(sh), 1)
    with open(path, "wb") as f:
        f.write(hdr + body + b"".join(sh))
elf(os.path.join(d, "good.kmod"), 1001000000)
elf(os.path.join(d, "nine.kmod"), 904000000)
elf(os.path.join(d, "arm.kmod"), 1001000000, machine=183)
elf(os.path.join(d, "exec.kmod"), 1001000000, etype=2)
elf(os.path.join(d, "nolinkset.kmod"), 1001000000, modules=False)
open(os.path.join(d, "text.kmod"), "w").write("not a module\n")
PY

expect 0 "dry run, stock module" --dry-run --stock --workdir "$tmp/w"
grep -q 'anita install https://cdn.netbsd.org/pub/NetBSD/NetBSD-10.1/amd64/' "$tmp/out" && ok "plan names the release" || bad "plan: $(cat "$tmp/out")"
expect 0 "dry run, module built for 10.1" --dry-run --release 10.1 --kmod "$tmp/good.kmod" --workdir "$tmp/w"
grep -q 'was built for NetBSD 10.1.0' "$tmp/out" && ok "plan reports the module's version" || bad "plan: $(cat "$tmp/out")"
grep -q 'run-netbsd.sh --results /var/tmp/dmtest/results --kmod /var/tmp/dmtest/dm.kmod' "$tmp/out" &&
    ok "plan loads the module in the guest" || bad "plan: $(cat "$tmp/out")"
expect 0 "dry run, distribution URL" --dry-run --dist https://cdn.netbsd.org/pub/NetBSD/NetBSD-10.0/amd64/ --kmod "$tmp/good.kmod" --workdir "$tmp/w"
expect 2 "module built for 9.4 refused for 10.1" --dry-run --release 10.1 --kmod "$tmp/nine.kmod"
expect 2 "aarch64 module refused" --dry-run --kmod "$tmp/arm.kmod"
expect 2 "executable refused as module" --dry-run --kmod "$tmp/exec.kmod"
expect 2 "object without link_set_modules refused" --dry-run --kmod "$tmp/nolinkset.kmod"
expect 2 "text file refused as module" --dry-run --kmod "$tmp/text.kmod"
expect 2 "missing module refused" --dry-run --kmod "$tmp/nope.kmod"
expect 2 "bad release refused" --dry-run --release ten --stock
expect 2 "non-amd64 distribution refused" --dry-run --dist https://cdn.netbsd.org/pub/NetBSD/NetBSD-10.1/evbarm-aarch64/ --stock

# The bundle disk unpacks with tar; a results disk written by tar unpacks with extract_results.
"$py" - "$here" "$tmp" <<'PY' && ok "bundle and results disks round-trip through tar" || bad "bundle/results round trip"
import importlib.util, os, subprocess, sys
here, tmp = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("run_anita", os.path.join(here, "run-anita.py"))
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
img = os.path.join(tmp, "bundle.img")
m.make_bundle(img, os.path.join(tmp, "good.kmod"), None)
assert os.path.getsize(img) % (1 << 20) == 0
guest = os.path.join(tmp, "guest"); os.makedirs(guest)
subprocess.run(["tar", "-xf", img], cwd=guest, check=True)
for f in ("MANIFEST", "dm.kmod", "tests/atf/Kyuafile", "tests/atf/lib/dmtest.subr", "tests/atf/run-netbsd.sh"):
    assert os.path.isfile(os.path.join(guest, f)), f
assert os.access(os.path.join(guest, "tests/atf/t_io"), os.X_OK)
os.makedirs(os.path.join(guest, "results"))
open(os.path.join(guest, "results", "summary.txt"), "w").write("atf: 1 passed, 0 failed, 0 skipped\n")
res = os.path.join(tmp, "results.img")
m.make_zero_image(res, 4)
subprocess.run(["tar", "-cf", res, "results"], cwd=guest, check=True)
out = os.path.join(tmp, "extracted")
m.extract_results(res, out)
assert open(os.path.join(out, "summary.txt")).read().startswith("atf: 1 passed")
PY

echo "anita-selftest: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
