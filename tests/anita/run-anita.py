#!/usr/bin/env python3
"""Runs the dm(4) atf tests on a NetBSD release installed in QEMU by anita, with the project's
dm.kmod loaded in place of the stock module, and brings back the results and the console log.

    tests/anita/run-anita.py --release 10.1 --kmod path/to/dm.kmod [options]
    tests/anita/run-anita.py --release 10.1 --kmod path/to/dm.kmod --dry-run

Steps of a real run (all printed by --dry-run, which needs no network and no anita):

 1. check the inputs: the release (or distribution URL), the module (an amd64 ELF relocatable
    NetBSD kernel module, built for the same NetBSD major version when it says which), the test
    programs under tests/atf, and the host tools (the NetBSD anita Python module, pexpect,
    qemu-system-x86_64, an ISO maker);
 2. pack tests/atf, dm.kmod (and --dmctl) into a tar file on a raw disk image (the bundle), and
    make an empty raw disk image for the results;
 3. anita installs the release into WORKDIR/wd0.img (downloading the sets; kept for later runs);
 4. anita boots it with the bundle as the second disk (wd1) and the results disk as the third
    (wd2), logs in as root and runs, on the console:
        tar -xf /dev/rwd1d                       (into /var/tmp/dmtest)
        sh tests/atf/run-netbsd.sh --kmod dm.kmod --results results
    which unloads the stock dm module, loads dm.kmod, runs the atf tests with kyua or atf-run,
    and writes the reports; then `tar -cf /dev/rwd2d results` and halt;
 5. the results are unpacked from the results disk into RESULTS (default WORKDIR/results),
    next to console.log (the whole console session) and anita's structured log.

Exit status: 0 when every test passed or skipped, 1 when a test failed or the run broke, 2 for
bad inputs or missing tools.

anita is not the package of that name on PyPI (an unrelated proof assistant); it comes from
its author's site or its GitHub repository (gson1703/anita), see tests/anita/README.md.
"""

import argparse
import io
import os
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ATF_DIR = os.path.join(ROOT, "tests", "atf")
MIRROR = "https://cdn.netbsd.org/pub/NetBSD/"
ARCHIVE = "https://archive.netbsd.org/pub/NetBSD-archive/"
GUEST_DIR = "/var/tmp/dmtest"
BUNDLE_DISK = "wd1"
RESULTS_DISK = "wd2"
RESULTS_MIB = 64

ET_REL = 1
EM_X86_64 = 62


class InputError(Exception):
    pass


# ----------------------------------------------------------------------------------------------
# Inputs


def release_version(release):
    """(major, minor, patch) of a release name such as 10.1 or 9.4; InputError otherwise."""
    m = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?", release)
    if not m:
        raise InputError("--release %r is not a NetBSD release number such as 10.1" % release)
    major, minor, patch = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    if major < 8:
        raise InputError("--release %s: NetBSD before 8.0 is not supported" % release)
    return major, minor, patch


def release_url(release):
    major, _, _ = release_version(release)
    base = MIRROR if major >= 9 else ARCHIVE
    return "%sNetBSD-%s/amd64/" % (base, release)


def check_dist_url(url):
    if url.endswith(".iso"):
        return
    if not re.match(r"^(https?|ftp|file)://", url) and not url.startswith("/"):
        raise InputError("--dist %r: expected a URL or a local directory" % url)
    if not url.endswith("/amd64/"):
        raise InputError("--dist %r: expected the amd64 directory of a release, ending in /amd64/" % url)


def netbsd_version_number(major, minor, patch):
    """__NetBSD_Version__ as sys/param.h writes it: MMmmrrpp00."""
    return major * 100000000 + minor * 1000000 + patch * 100


def read_elf_module(path):
    """Reads what matters of a kernel module: returns a dict with the section names and the
    NetBSD version note's value (or None); raises InputError when it is not an amd64 ELF
    relocatable object."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError("--kmod %s: %s" % (path, e.strerror))
    if len(data) < 64 or data[:4] != b"\x7fELF":
        raise InputError("--kmod %s: not an ELF file" % path)
    if data[4] != 2 or data[5] != 1:
        raise InputError("--kmod %s: not a 64-bit little-endian ELF file (amd64)" % path)
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    if e_machine != EM_X86_64:
        raise InputError("--kmod %s: ELF machine %d, not x86-64 (62)" % (path, e_machine))
    if e_type != ET_REL:
        raise InputError("--kmod %s: ELF type %d; a kernel module is a relocatable object (1)" % (path, e_type))
    e_shoff, = struct.unpack_from("<Q", data, 40)
    e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 58)
    if e_shnum == 0 or e_shentsize < 64 or e_shoff + e_shnum * e_shentsize > len(data):
        raise InputError("--kmod %s: no usable section table" % path)
    sections = []
    for i in range(e_shnum):
        off = e_shoff + i * e_shentsize
        name, stype, _flags, _addr, soff, size = struct.unpack_from("<IIQQQQ", data, off)
        sections.append((name, stype, soff, size))
    if e_shstrndx >= e_shnum:
        raise InputError("--kmod %s: bad section name table index" % path)
    _, _, stroff, strsize = sections[e_shstrndx]
    strtab = data[stroff:stroff + strsize]

    def name_of(n):
        end = strtab.find(b"\0", n)
        return strtab[n:end if end >= 0 else len(strtab)].decode("ascii", "replace")

    names = {}
    for name, stype, soff, size in sections:
        names[name_of(name)] = (stype, soff, size)
    version = None
    note = names.get(".note.netbsd.ident")
    if note:
        _, soff, size = note
        blob = data[soff:soff + size]
        if len(blob) >= 12:
            namesz, descsz, _ntype = struct.unpack_from("<III", blob, 0)
            desc_off = 12 + ((namesz + 3) & ~3)
            if blob[12:12 + namesz].rstrip(b"\0") == b"NetBSD" and descsz >= 4 and desc_off + 4 <= len(blob):
                version, = struct.unpack_from("<I", blob, desc_off)
    return {"sections": sorted(names), "version": version}


def describe_version(v):
    major = v // 100000000
    minor = (v // 1000000) % 100
    patch = (v // 100) % 10000
    return "%d.%d.%d (%d)" % (major, minor, patch, v)


def check_kmod(path, release, notes):
    info = read_elf_module(path)
    if "link_set_modules" not in info["sections"]:
        raise InputError("--kmod %s: no link_set_modules section; not a NetBSD kernel module "
                         "(built with bsd.kmodule.mk?)" % path)
    if info["version"] is None:
        notes.append("%s carries no .note.netbsd.ident: cannot check that it was built for %s"
                     % (path, release or "this release"))
    elif release:
        major, minor, patch = release_version(release)
        built = info["version"]
        if built // 100000000 != major:
            raise InputError("--kmod %s was built for NetBSD %s; the release is %s"
                             % (path, describe_version(built), release))
        notes.append("%s was built for NetBSD %s" % (path, describe_version(built)))
    return info


def check_atf_tree(notes):
    problems = []
    for f in ("Atffile", "Kyuafile", "lib/dmtest.subr", "run-netbsd.sh"):
        if not os.path.isfile(os.path.join(ATF_DIR, f)):
            problems.append("tests/atf/%s is missing" % f)
    programs = []
    kyuafile = os.path.join(ATF_DIR, "Kyuafile")
    if os.path.isfile(kyuafile):
        with open(kyuafile) as f:
            programs = re.findall(r'atf_test_program\{name="([^"]+)"', f.read())
        if not programs:
            problems.append("tests/atf/Kyuafile lists no test program")
    atffile = os.path.join(ATF_DIR, "Atffile")
    if os.path.isfile(atffile):
        with open(atffile) as f:
            listed = re.findall(r"^tp: (\S+)$", f.read(), re.M)
        if sorted(listed) != sorted(programs):
            problems.append("Atffile lists %s, Kyuafile %s" % (sorted(listed), sorted(programs)))
    for p in programs:
        path = os.path.join(ATF_DIR, p)
        if not os.path.isfile(path):
            problems.append("test program tests/atf/%s is missing" % p)
            continue
        if not os.access(path, os.X_OK):
            problems.append("test program tests/atf/%s is not executable" % p)
        with open(path) as f:
            first = f.readline()
        if "atf-sh" not in first:
            problems.append("tests/atf/%s does not start with an atf-sh #! line" % p)
        r = subprocess.run(["sh", "-n", path], capture_output=True, text=True)
        if r.returncode != 0:
            problems.append("tests/atf/%s: sh -n: %s" % (p, r.stderr.strip()))
    if problems:
        raise InputError("; ".join(problems))
    notes.append("tests/atf: %d test programs: %s" % (len(programs), " ".join(programs)))
    return programs


def find_anita():
    """The NetBSD anita module, or (None, why)."""
    try:
        import anita  # noqa: F401
    except ImportError:
        return None, "the anita Python module is not installed"
    if not hasattr(anita, "Anita") or not hasattr(anita, "distribution"):
        return None, ("the installed 'anita' module is not NetBSD's anita (PyPI's 'anita' is an "
                      "unrelated project); install it from gson1703/anita, see tests/anita/README.md")
    return anita, None


def host_tools():
    """[(tool, present, why it is needed)]"""
    anita, why = find_anita()
    tools = [("anita (Python module, NetBSD's)", anita is not None, why or "installs and drives the VM")]
    try:
        import pexpect  # noqa: F401
        tools.append(("pexpect (Python module)", True, "used by anita"))
    except ImportError:
        tools.append(("pexpect (Python module)", False, "used by anita: pip install pexpect"))
    tools.append(("qemu-system-x86_64", shutil.which("qemu-system-x86_64") is not None,
                  "runs the VM (Debian: qemu-system-x86)"))
    iso = [t for t in ("genisoimage", "mkisofs", "xorriso") if shutil.which(t)]
    tools.append(("genisoimage or mkisofs", bool(iso), "anita builds the install ISO (Debian: genisoimage)"))
    return tools, anita


# ----------------------------------------------------------------------------------------------
# The run


def make_bundle(path, kmod, dmctl):
    """A raw disk image holding a tar file: tests/atf, dm.kmod, the project's dmctl."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        def add(src, arcname):
            tar.add(src, arcname=arcname, filter=lambda ti: _normalize(ti))
        add(ATF_DIR, "tests/atf")
        if kmod:
            add(kmod, "dm.kmod")
        if dmctl:
            add(dmctl, "dmctl")
        manifest = ("dm atf bundle\nkmod=%s\ndmctl=%s\n" % (bool(kmod), bool(dmctl))).encode()
        ti = tarfile.TarInfo("MANIFEST")
        ti.size = len(manifest)
        ti.mtime = int(time.time())
        tar.addfile(ti, io.BytesIO(manifest))
    data = buf.getvalue()
    size = (len(data) + (1 << 20) - 1) // (1 << 20) * (1 << 20) + (1 << 20)
    with open(path, "wb") as f:
        f.write(data)
        f.truncate(size)
    return len(data)


def _normalize(ti):
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    return ti


def make_zero_image(path, mib):
    with open(path, "wb") as f:
        f.truncate(mib << 20)


def extract_results(image, dest):
    """Unpacks results/ from the results disk into dest; refuses any other path."""
    os.makedirs(dest, exist_ok=True)
    with open(image, "rb") as f:
        head = f.read(512)
        if head.strip(b"\0") == b"":
            raise RuntimeError("the results disk is empty: the guest did not write its results")
        f.seek(0)
        with tarfile.open(fileobj=f, mode="r|") as tar:
            for member in tar:
                name = os.path.normpath(member.name)
                if name.startswith("/") or name.startswith("..") or not (name == "results" or name.startswith("results/")):
                    raise RuntimeError("unexpected path in the results: %r" % member.name)
                if not (member.isdir() or member.isreg()):
                    continue
                target = os.path.join(dest, os.path.relpath(name, "results"))
                if member.isdir():
                    os.makedirs(target, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    src = tar.extractfile(member)
                    with open(target, "wb") as out:
                        shutil.copyfileobj(src, out)


class Tee(object):
    """Standard output that is also written to the console log (anita writes the console to
    sys.stdout, as bytes through .buffer)."""

    class _Buffer(object):
        def __init__(self, raw, log):
            self.raw, self.log = raw, log

        def write(self, b):
            self.raw.write(b)
            self.log.write(b)
            return len(b)

        def flush(self):
            self.raw.flush()
            self.log.flush()

    def __init__(self, stream, log):
        self.stream = stream
        self.buffer = Tee._Buffer(stream.buffer, log)

    def write(self, s):
        b = s.encode("utf-8", "replace")
        self.buffer.write(b)
        return len(s)

    def flush(self):
        self.buffer.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


def guest_commands(args):
    run = "sh tests/atf/run-netbsd.sh --results %s/results" % GUEST_DIR
    if args.kmod:
        run += " --kmod %s/dm.kmod" % GUEST_DIR
    if args.dmctl:
        run += " --dmctl %s/dmctl" % GUEST_DIR
    if args.runner:
        run += " --runner %s" % args.runner
    return [
        ("unpack the bundle from %s" % BUNDLE_DISK,
         "rm -rf %s && mkdir -p %s && cd %s && tar -xf /dev/r%sd && test -f MANIFEST && cat MANIFEST"
         % (GUEST_DIR, GUEST_DIR, GUEST_DIR, BUNDLE_DISK)),
        ("%srun the atf tests" % ("load dm.kmod and " if args.kmod else ""), "cd %s && %s" % (GUEST_DIR, run)),
        ("save the results to %s" % RESULTS_DISK,
         "cd %s && test `</dev/r%sd dd bs=64k count=1 2>/dev/null | tr -d '\\000' | wc -c` = 0 && "
         "tar -cf /dev/r%sd results" % (GUEST_DIR, RESULTS_DISK, RESULTS_DISK)),
    ]


def print_plan(args, url, tools, notes):
    print("plan:")
    print("  distribution  %s" % url)
    print("  workdir       %s" % args.workdir)
    print("  results       %s" % args.results)
    print("  module        %s" % (args.kmod or "none: the stock dm module (baseline run)"))
    if args.dmctl:
        print("  dmctl         %s" % args.dmctl)
    print("  VM            qemu-system-x86_64%s, %s memory, %s system disk"
          % (" -enable-kvm" if args.kvm else "", args.memory, args.disk_size))
    for n in notes:
        print("  note: %s" % n)
    print("steps:")
    print("  1. pack tests/atf%s%s into %s/bundle.img; zero %d MiB %s/results.img"
          % (", dm.kmod" if args.kmod else "", ", dmctl" if args.dmctl else "",
             args.workdir, RESULTS_MIB, args.workdir))
    print("  2. anita install %s into %s/wd0.img (skipped when it exists)" % (url, args.workdir))
    print("  3. anita boot with -drive bundle.img (%s) and -drive results.img (%s), login as root"
          % (BUNDLE_DISK, RESULTS_DISK))
    for i, (what, cmd) in enumerate(guest_commands(args)):
        print("  %d. guest: %s\n        %s" % (4 + i, what, cmd))
    print("  7. halt; unpack results/ from results.img into %s; console log in %s/console.log"
          % (args.results, args.results))
    print("host tools for the real run:")
    for name, ok, why in tools:
        print("  [%s] %s: %s" % ("ok" if ok else "missing", name, why))


def real_run(args, url, anita):
    os.makedirs(args.workdir, exist_ok=True)
    os.makedirs(args.results, exist_ok=True)
    bundle = os.path.join(args.workdir, "bundle.img")
    results_img = os.path.join(args.workdir, "results.img")
    n = make_bundle(bundle, args.kmod, args.dmctl)
    print("run-anita: bundle %s (%d bytes of tar)" % (bundle, n))
    make_zero_image(results_img, RESULTS_MIB)

    console = open(os.path.join(args.results, "console.log"), "ab")
    sys.stdout = Tee(sys.__stdout__, console)
    status = 1
    a = anita.Anita(anita.distribution(url), workdir=args.workdir,
                    vmm_args=["-enable-kvm"] if args.kvm else [],
                    memory_size=args.memory, disk_size=args.disk_size,
                    structured_log_file=os.path.join(args.results, "anita-structured.log"))
    try:
        a.install()
        disks = a.qemu_disk_args(os.path.abspath(bundle), 1, False, False) + \
            a.qemu_disk_args(os.path.abspath(results_img), 2, True, False)
        a.boot(disks)
        a.login()
        commands = guest_commands(args)
        for i, (what, cmd) in enumerate(commands):
            print("\nrun-anita: %s" % what)
            timeout = args.timeout if i == 1 else 600
            rc = a.shell_cmd(cmd, timeout)
            if i == 1:
                status = 0 if rc == 0 else 1
            elif rc != 0:
                raise RuntimeError("guest step failed (%d): %s" % (rc, what))
        a.halt()
    finally:
        a.cleanup()
        sys.stdout = sys.__stdout__
        console.close()
    extract_results(results_img, args.results)
    summary = os.path.join(args.results, "summary.txt")
    if os.path.exists(summary):
        with open(summary) as f:
            print(f.read().strip())
    print("run-anita: results in %s" % args.results)
    return status


def main(argv=None):
    p = argparse.ArgumentParser(description="Run the dm(4) atf tests on NetBSD in QEMU with anita.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--release", default="10.1", help="NetBSD release to install (default 10.1)")
    src.add_argument("--dist", help="distribution URL or local directory ending in /amd64/, or an ISO")
    mod = p.add_mutually_exclusive_group()
    mod.add_argument("--kmod", help="the project's dm.kmod built for the release "
                     "(default: kmod/netbsd/dm.kmod when it exists)")
    mod.add_argument("--stock", action="store_true", help="run against the stock dm module (baseline)")
    p.add_argument("--dmctl", help="the project's dmctl built for NetBSD/amd64 (optional)")
    p.add_argument("--runner", choices=("kyua", "atf"), help="test runner in the guest (default: kyua if installed)")
    p.add_argument("--workdir", help="anita's work directory (default: ./anita-work/<release>)")
    p.add_argument("--results", help="where results and logs go (default: WORKDIR/results)")
    p.add_argument("--memory", default="1G", help="VM memory (default 1G)")
    p.add_argument("--disk-size", default="4G", help="VM system disk (default 4G)")
    p.add_argument("--kvm", action="store_true", help="pass -enable-kvm to QEMU (needs /dev/kvm)")
    p.add_argument("--timeout", type=int, default=7200, help="seconds allowed for the tests (default 7200)")
    p.add_argument("--dry-run", action="store_true", help="check the inputs and print the plan; no network, no VM")
    args = p.parse_args(argv)

    notes = []
    try:
        if args.dist:
            check_dist_url(args.dist)
            url = args.dist
            release = None
            m = re.search(r"NetBSD-(\d+\.\d+(?:\.\d+)?)/", url)
            if m:
                release = m.group(1)
        else:
            release = args.release
            url = release_url(release)
        if not args.kmod and not args.stock:
            default = os.path.join(ROOT, "kmod", "netbsd", "dm.kmod")
            if os.path.exists(default):
                args.kmod = default
            else:
                raise InputError("no --kmod given and %s does not exist (build it with make -f "
                                 "Makefile.bsd on NetBSD %s, or use --stock for a baseline run)"
                                 % (os.path.relpath(default, os.getcwd()), release or ""))
        if args.kmod:
            args.kmod = os.path.abspath(args.kmod)
            check_kmod(args.kmod, release, notes)
        if args.kvm and not os.access("/dev/kvm", os.R_OK | os.W_OK):
            notes.append("--kvm: /dev/kvm is not usable here; QEMU will refuse to start")
        if args.dmctl:
            args.dmctl = os.path.abspath(args.dmctl)
            if not os.path.isfile(args.dmctl):
                raise InputError("--dmctl %s does not exist" % args.dmctl)
            info = read_elf_module_header(args.dmctl)
            notes.append("dmctl: %s" % info)
        check_atf_tree(notes)
        args.workdir = os.path.abspath(args.workdir or os.path.join("anita-work", release or "dist"))
        args.results = os.path.abspath(args.results or os.path.join(args.workdir, "results"))
        parent = os.path.dirname(args.workdir)
        while parent and not os.path.isdir(parent):
            parent = os.path.dirname(parent)
        if not os.access(parent or ".", os.W_OK):
            raise InputError("cannot write under %s" % parent)
    except InputError as e:
        print("run-anita: %s" % e, file=sys.stderr)
        return 2

    tools, anita = host_tools()
    if args.dry_run:
        print_plan(args, url, tools, notes)
        print("run-anita: dry run: inputs are valid; nothing was downloaded or started")
        return 0
    missing = [name for name, ok, _ in tools if not ok]
    if missing:
        print_plan(args, url, tools, notes)
        print("run-anita: missing for the real run: %s (see tests/anita/README.md)" % ", ".join(missing),
              file=sys.stderr)
        return 2
    for n in notes:
        print("run-anita: %s" % n)
    try:
        return real_run(args, url, anita)
    except Exception as e:  # the VM or anita failed: report, keep what was collected
        print("run-anita: the run broke: %s" % e, file=sys.stderr)
        return 1


def read_elf_module_header(path):
    """A one-line description of an executable given with --dmctl (must be NetBSD/amd64 ELF)."""
    with open(path, "rb") as f:
        head = f.read(64)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        raise InputError("--dmctl %s: not an ELF file" % path)
    e_type, e_machine = struct.unpack_from("<HH", head, 16)
    if e_machine != EM_X86_64 or e_type not in (2, 3):
        raise InputError("--dmctl %s: not an amd64 executable" % path)
    osabi = head[7]
    return "%s (ELF amd64 executable, OS/ABI %d)" % (path, osabi)


if __name__ == "__main__":
    sys.exit(main())
