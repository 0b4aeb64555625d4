//! Generates the Rust declarations of kmod/include/dmtarget.h (its structures, constants and
//! function pointer types) with bindgen, so that the header stays the one definition of the ABI.
//! `DMTARGET_HEADER` overrides the header's path.

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let header = match env::var("DMTARGET_HEADER") {
        Ok(path) => PathBuf::from(path),
        Err(_) => manifest.join("../../kmod/include/dmtarget.h"),
    };
    println!("cargo:rerun-if-env-changed=DMTARGET_HEADER");
    println!("cargo:rerun-if-changed={}", header.display());
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let target = env::var("TARGET").expect("TARGET");
    let mut b = bindgen::Builder::default()
        .header(header.display().to_string())
        .use_core()
        .ctypes_prefix("::core::ffi")
        .allowlist_type("dmtarget_.*")
        .allowlist_var("DMTARGET_.*")
        .allowlist_function("dmtarget_module_entry")
        .layout_tests(false)
        .generate_comments(false)
        .prepend_enum_name(false)
        .clang_arg("-ffreestanding");
    // The kernel targets' C equivalents, so that sizes and alignments are the kernel's.
    let clang_target = match target.as_str() {
        "x86_64-unknown-none" => Some("x86_64-unknown-none-elf"),
        "aarch64-unknown-none-softfloat" | "aarch64-unknown-none" => Some("aarch64-unknown-none-elf"),
        _ => None,
    };
    if let Some(t) = clang_target {
        b = b.clang_arg(format!("--target={t}"));
    }
    b.generate().expect("bindgen: dmtarget.h").write_to_file(out.join("dmtarget.rs")).expect("write dmtarget.rs");
}
