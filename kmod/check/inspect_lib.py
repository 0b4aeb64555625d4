#!/usr/bin/env python3
"""Checks a kernel build of libdmkmod.a (or the linked module object) and prints its figures.

    inspect_lib.py <x86_64|aarch64> <file> <dmcore.h> [--module | --target-module <dm.kmod.o>]

- undefined symbols: only the glue's dmglue_* functions (as dmcore.h declares them) and
  memcpy, memmove, memset, memcmp (with --module: the NetBSD kernel interfaces, listed; with
  --target-module, for a target module's object: the dmcore_*/dmglue_* ones must be defined
  by the dm module it requires, and no global symbol it defines may be one dm.kmod defines,
  which NetBSD's loader would refuse as redefined);
- relocation types, outside debug sections: only those NetBSD's module loader applies
  (kmod/RELOCATIONS.md: amd64 kobj_machdep.c 1.6, aarch64 kobj_machdep.c 1.5);
- no floating-point or SIMD instruction (disassembly scan);
- the panic call sites left: calls and jumps to Rust's panic entry points, counted per caller.

Exits non-zero when a rule is broken; the panic count is a figure, not a rule (goal: 0 reachable).
"""

import re
import subprocess
import sys
from collections import Counter, defaultdict

ACCEPTED = {
    # NetBSD sys/arch/amd64/amd64/kobj_machdep.c 1.6 (2017/11/03), kobj_reloc().
    "x86_64": {
        "R_X86_64_NONE", "R_X86_64_64", "R_X86_64_PC32", "R_X86_64_32", "R_X86_64_32S",
        "R_X86_64_GLOB_DAT", "R_X86_64_JUMP_SLOT", "R_X86_64_RELATIVE",
    },
    # NetBSD sys/arch/aarch64/aarch64/kobj_machdep.c 1.5 (2020/09/14), kobj_reloc(); RELA only.
    "aarch64": {
        "R_AARCH64_NONE", "R_AARCH64_P32_NONE", "R_AARCH64_ABS64", "R_AARCH64_ABS32",
        "R_AARCH64_ABS16", "R_AARCH64_PREL64", "R_AARCH64_PREL32", "R_AARCH64_PREL16",
        "R_AARCH64_ADR_PREL_PG_HI21", "R_AARCH64_ADR_PREL_PG_HI21_NC",
        "R_AARCH64_ADD_ABS_LO12_NC", "R_AARCH64_LDST8_ABS_LO12_NC",
        "R_AARCH64_LDST16_ABS_LO12_NC", "R_AARCH64_LDST32_ABS_LO12_NC",
        "R_AARCH64_LDST64_ABS_LO12_NC", "R_AARCH64_JUMP26", "R_AARCH64_CALL26",
    },
}

MEMORY = {"memcpy", "memmove", "memset", "memcmp"}

# Rust's panic entry points (demangled, without hash): every way a panic starts.
PANIC = re.compile(
    r"^(core::panicking::|core::option::(unwrap|expect)_failed|core::result::unwrap_failed"
    r"|core::slice::index::\w*fail|core::str::slice_error_fail|core::cell::panic_already"
    r"|alloc::alloc::handle_alloc_error|alloc::raw_vec::(handle_error|capacity_overflow)"
    r"|core::char::methods::encode_utf8_raw::do_panic|rust_begin_unwind|__rust_alloc_error_handler"
    r"|__rustc::rust_begin_unwind|__rustc::__rust_alloc_error_handler)"
)

# The entry points reached only when an allocation fails. The glue allocates with KM_SLEEP in
# thread context (it cannot fail there); only allocations from interrupt context can fail.
ALLOC_FAILURE = re.compile(
    r"^(alloc::alloc::handle_alloc_error|alloc::raw_vec::(handle_error|capacity_overflow)"
    r"|__rust_alloc_error_handler|__rustc::__rust_alloc_error_handler)"
)

X86_FP = re.compile(r"%(x|y|z)mm\d|%mm\d|%st\b|%st\(")
X86_FP_MNEMONIC = re.compile(
    r"^(f(?!ence)\w+|emms|ldmxcsr|stmxcsr|fxsave\w*|fxrstor\w*|xsave\w*|xrstor\w*|vzero\w+)$")
A64_FP = re.compile(r"\b[vqdshb]([0-9]|[12][0-9]|3[01])(\.\w+)?\b")
A64_FP_MNEMONIC = re.compile(r"^f\w+$")


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def header_glue_functions(header):
    text = open(header).read()
    return set(re.findall(r"\b(dmglue_\w+)\s*\(", text))


def defined_globals(path):
    """Defined global (and weak) symbols."""
    names = set()
    for line in run("readelf", "-sW", path).splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[6] != "UND" and parts[4] in ("GLOBAL", "WEAK"):
            names.add(parts[7])
    return names


def undefined(path):
    """Undefined global symbols, from the symbol tables (also of an archive's members)."""
    names = set()
    for line in run("readelf", "-sW", path).splitlines():
        parts = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        if len(parts) >= 8 and parts[6] == "UND" and parts[4] in ("GLOBAL", "WEAK"):
            names.add(parts[7])
    return names


def relocations(path):
    kinds = Counter()
    section = ""
    for line in run("readelf", "-rW", path).splitlines():
        m = re.match(r"Relocation section '([^']+)'", line)
        if m:
            section = m.group(1)
            continue
        if ".debug" in section:
            continue
        m = re.match(r"\s*[0-9a-f]+\s+[0-9a-f]+\s+(R_\w+)", line)
        if m:
            kinds[m.group(1)] += 1
    return kinds


def disassembly(path):
    return run("llvm-objdump", "-dr", "-C", "--no-show-raw-insn", path)


def demangle(names):
    names = sorted(set(names))
    if not names:
        return {}
    out = subprocess.run(["llvm-cxxfilt"], input="\n".join(names) + "\n", check=True,
                         capture_output=True, text=True).stdout.splitlines()
    return {raw: re.sub(r"::h[0-9a-f]{16}$", "", nice) for raw, nice in zip(names, out)}


def scan(arch, path):
    """FP/SIMD instructions, and panic call sites per calling function."""
    fp = []
    calls = []
    function = "?"
    last_insn = None
    for line in disassembly(path).splitlines():
        m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if m:
            function = m.group(1)
            continue
        m = re.match(r"^\s+[0-9a-f]+:\s+(R_\w+)\s+(.*)$", line)
        if m:
            if last_insn and is_branch(arch, last_insn):
                target = re.sub(r"[+-]0x[0-9a-f]+$", "", m.group(2).strip())
                # A reference through a function's own section names the section.
                target = re.sub(r"^\.text(\.unlikely|\.hot|\.startup)?\.", "", target)
                calls.append((function, target))
            continue
        m = re.match(r"^\s+[0-9a-f]+:\s+(\S+)\s*(.*)$", line)
        if not m:
            continue
        mnemonic, operands = m.group(1), re.sub(r"<[^>]*>", "", m.group(2))
        last_insn = mnemonic
        if arch == "x86_64":
            if X86_FP.search(operands) or X86_FP_MNEMONIC.match(mnemonic):
                fp.append(f"{function}: {mnemonic} {operands}")
        else:
            operands = re.sub(r"//.*$", "", operands)
            if A64_FP.search(operands) or A64_FP_MNEMONIC.match(mnemonic):
                fp.append(f"{function}: {mnemonic} {operands}")
    nice = demangle([t for _, t in calls])
    sites = defaultdict(int)
    other_sites = defaultdict(int)
    entries = set()
    for function, target in calls:
        name = nice.get(target, target)
        if PANIC.match(name) and not PANIC.match(function):
            sites[function] += 1
            entries.add(name)
            if not ALLOC_FAILURE.match(name):
                other_sites[function] += 1
    return fp, sites, other_sites, entries


def is_branch(arch, mnemonic):
    if arch == "x86_64":
        return mnemonic.startswith("call") or mnemonic.startswith("j")
    return mnemonic in ("bl", "b") or mnemonic.startswith("b.")


def main():
    arch, path, header = sys.argv[1], sys.argv[2], sys.argv[3]
    module = "--module" in sys.argv[4:]
    target_module = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--target-module" else None
    ok = True
    label = f"[{arch}{' module' if module else ''}{' target module' if target_module else ''}]"

    und = undefined(path)
    glue = header_glue_functions(header)
    if target_module:
        dm = defined_globals(target_module)
        ours = defined_globals(path)
        boundary = sorted(n for n in und if n.startswith("dmglue_") or n.startswith("dmcore_"))
        kernel = sorted(und - set(boundary))
        print(f"{label} undefined symbols: {len(und)}: from dm.kmod: {' '.join(boundary)}; "
              f"from the kernel: {' '.join(kernel)}")
        missing = [n for n in boundary if n not in dm]
        if missing:
            print(f"{label} FAIL: not defined by dm.kmod: {' '.join(missing)}")
            ok = False
        clash = sorted(ours & dm)
        print(f"{label} global symbols defined: {len(ours)} ({' '.join(sorted(ours))}); "
              f"also defined by dm.kmod: {len(clash)}")
        if clash:
            print(f"{label} FAIL: NetBSD's loader refuses these as redefined: {' '.join(clash[:10])}")
            ok = False
    elif module:
        dmglue_left = sorted(n for n in und if n.startswith("dmglue_") or n.startswith("dmcore_"))
        kernel = sorted(und - MEMORY)
        print(f"{label} undefined symbols: {len(und)} (the NetBSD kernel interfaces the module uses)")
        print(f"{label}   " + " ".join(kernel))
        if dmglue_left:
            print(f"{label} FAIL: boundary functions left undefined: {' '.join(dmglue_left)}")
            ok = False
    else:
        bad = sorted(n for n in und if n not in MEMORY and n not in glue)
        print(f"{label} undefined symbols: {len(und)} "
              f"({len(und & glue)} dmglue_*, {len(und & MEMORY)} memory functions"
              f"{', ' + str(len(bad)) + ' others' if bad else ''})")
        if bad:
            print(f"{label} FAIL: undefined symbols outside dmglue_* and memory functions: "
                  + " ".join(bad))
            ok = False

    kinds = relocations(path)
    found = ", ".join(f"{k.replace('R_X86_64_', '').replace('R_AARCH64_', '')} {n}"
                      for k, n in sorted(kinds.items()))
    print(f"{label} relocation types (outside debug sections): {found}")
    refused = sorted(k for k in kinds if k not in ACCEPTED[arch])
    if refused:
        print(f"{label} FAIL: relocation types NetBSD's {arch} module loader refuses: "
              + " ".join(refused))
        ok = False
    else:
        print(f"{label} every relocation type is one NetBSD's {arch} kobj_reloc() applies")

    fp, sites, other_sites, entries = scan(arch, path)
    print(f"{label} floating-point/SIMD instructions: {len(fp)}")
    for line in fp[:20]:
        print(f"{label}   {line}")
    if fp:
        ok = False

    total = sum(sites.values())
    print(f"{label} panic call sites: {total} in {len(sites)} functions "
          f"(calls and jumps to Rust's panic entry points; goal: 0 reachable)")
    print(f"{label}   entry points called: {', '.join(sorted(entries))}")
    others = sum(other_sites.values())
    print(f"{label}   of which {total - others} only on allocation failure, {others} on other conditions "
          f"(bounds, unwrap, division, explicit panics) in {len(other_sites)} functions:")
    top = sorted(other_sites.items(), key=lambda kv: -kv[1])[:8]
    for function, n in top:
        print(f"{label}   {n:4d}  {function[:110]}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
