//! kobjfix: makes the x86-64 objects of a static library loadable by NetBSD's amd64 module
//! loader.
//!
//! LLVM (like GNU as since 2.31) marks every direct call and jump to a symbol with
//! R_X86_64_PLT32. NetBSD's amd64 kobj_reloc() (kobj_machdep.c 1.6) does not know that type and
//! refuses the module. A kernel module has no PLT: the loader resolves a call to the symbol itself,
//! so PLT32's value (L + A - P) is PC32's (S + A - P). This tool rewrites the type of every PLT32
//! relocation to PC32 in place; nothing else changes (same sizes, same symbols), so an archive's
//! layout and symbol index stay valid. Other machines' objects are left alone.
//!
//!     kobjfix FILE...      (each an ar archive or an ELF relocatable object)

use std::env;
use std::fs;
use std::process::ExitCode;

const EM_X86_64: u16 = 62;
const SHT_RELA: u32 = 4;
const R_X86_64_PC32: u32 = 2;
const R_X86_64_PLT32: u32 = 4;

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Rewrites the PLT32 relocations of one ELF object held in `obj`; returns how many.
fn fix_object(obj: &mut [u8]) -> Result<usize, String> {
    if obj.get(..4) != Some(b"\x7fELF") {
        return Ok(0);
    }
    // ELFCLASS64, little-endian: anything else is not an x86-64 object.
    if obj.get(4) != Some(&2) || obj.get(5) != Some(&1) {
        return Ok(0);
    }
    let bad = || "truncated ELF header".to_string();
    if u16_at(obj, 0x12).ok_or_else(bad)? != EM_X86_64 {
        return Ok(0);
    }
    let shoff = usize::try_from(u64_at(obj, 0x28).ok_or_else(bad)?).map_err(|e| e.to_string())?;
    let shentsize = usize::from(u16_at(obj, 0x3a).ok_or_else(bad)?);
    let shnum = usize::from(u16_at(obj, 0x3c).ok_or_else(bad)?);
    let mut fixed = 0;
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        let bad = || format!("section header {i} out of range");
        if u32_at(obj, sh + 4).ok_or_else(bad)? != SHT_RELA {
            continue;
        }
        let off = usize::try_from(u64_at(obj, sh + 0x18).ok_or_else(bad)?).map_err(|e| e.to_string())?;
        let size = usize::try_from(u64_at(obj, sh + 0x20).ok_or_else(bad)?).map_err(|e| e.to_string())?;
        let entsize = usize::try_from(u64_at(obj, sh + 0x38).ok_or_else(bad)?).map_err(|e| e.to_string())?;
        if entsize != 24 {
            return Err(format!("section {i}: RELA entry size {entsize}"));
        }
        for r in (off..off + size).step_by(24) {
            let info_at = r + 8;
            let kind = u32_at(obj, info_at).ok_or_else(|| format!("relocation at {r} out of range"))?;
            if kind == R_X86_64_PLT32 {
                obj[info_at..info_at + 4].copy_from_slice(&R_X86_64_PC32.to_le_bytes());
                fixed += 1;
            }
        }
    }
    Ok(fixed)
}

/// Walks the members of an ar archive and fixes each object in place.
fn fix_archive(ar: &mut [u8]) -> Result<usize, String> {
    let mut pos = 8;
    let mut fixed = 0;
    while pos + 60 <= ar.len() {
        let header = &ar[pos..pos + 60];
        if &header[58..60] != b"`\n" {
            return Err(format!("bad archive member header at {pos}"));
        }
        let size: usize = std::str::from_utf8(&header[48..58])
            .map_err(|e| e.to_string())?
            .trim()
            .parse()
            .map_err(|e| format!("member size at {pos}: {e}"))?;
        let start = pos + 60;
        let end = start
            .checked_add(size)
            .filter(|&e| e <= ar.len())
            .ok_or_else(|| format!("member at {pos} runs past the end"))?;
        fixed += fix_object(&mut ar[start..end])?;
        pos = end + (size & 1);
    }
    Ok(fixed)
}

fn main() -> ExitCode {
    let files: Vec<String> = env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: kobjfix FILE...");
        return ExitCode::from(2);
    }
    for file in files {
        let mut bytes = match fs::read(&file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("kobjfix: {file}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let result = if bytes.starts_with(b"!<arch>\n") { fix_archive(&mut bytes) } else { fix_object(&mut bytes) };
        match result {
            Ok(n) => {
                if n > 0 {
                    if let Err(e) = fs::write(&file, &bytes) {
                        eprintln!("kobjfix: {file}: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                eprintln!("kobjfix: {file}: {n} R_X86_64_PLT32 relocations now R_X86_64_PC32");
            }
            Err(e) => {
                eprintln!("kobjfix: {file}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
