//! Loadable targets in dmhost: the flakey target built as a separate module
//! (kmod/targets/flakey, a shared object over kmod/include/dmtarget.h) loaded into a dmhost
//! started without its built-in flakey, with `--target-module` and by autoload from
//! `--module-dir`; flakey tables made of it checked through NBD on the bytes of the image
//! files; unloading refused with EBUSY while a table uses it, and allowed after.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use common::*;
use dmcore::plist::Value;

const EBUSY: i32 = 16;
const ENOENT: i32 = 2;
const EINVAL: i32 = 22;
const KIB: usize = 1024;

/// Builds the module's shared object (once per test process) with cargo, into the target
/// directory the tests run from, and returns its path.
fn flakey_module() -> &'static Path {
    static SO: OnceLock<PathBuf> = OnceLock::new();
    SO.get_or_init(|| {
        // dmhost is TARGET/PROFILE/dmhost; the module is built next to it.
        let dmhost = PathBuf::from(env!("CARGO_BIN_EXE_dmhost"));
        let profile_dir = dmhost.parent().expect("dmhost has a directory").to_path_buf();
        let target_dir = profile_dir.parent().expect("a target directory");
        let profile = profile_dir.file_name().and_then(|p| p.to_str()).unwrap_or("debug");
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        cmd.args(["build", "--quiet", "-p", "dm-target-flakey"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CARGO_TARGET_DIR", target_dir)
            .stdin(Stdio::null());
        match profile {
            "debug" => {}
            "release" => {
                cmd.arg("--release");
            }
            other => {
                cmd.args(["--profile", other]);
            }
        }
        let out = cmd.output().expect("cargo runs");
        assert!(out.status.success(), "cargo build -p dm-target-flakey: {}", String::from_utf8_lossy(&out.stderr));
        let so = profile_dir.join("libdm_target_flakey.so");
        assert!(so.is_file(), "{} was not built", so.display());
        so
    })
}

fn targets(ctl: &mut Control) -> Vec<(String, Vec<u64>)> {
    let reply = ctl.cmd("targets", "").ok().dict();
    reply
        .get_array("cmd_data")
        .unwrap()
        .iter()
        .map(|t| {
            let t = t.as_dict().unwrap();
            let ver = t.get_array("ver").unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
            (t.get_str("name").unwrap().to_string(), ver)
        })
        .collect()
}

fn has_flakey(ctl: &mut Control) -> bool {
    targets(ctl).iter().any(|(name, ver)| name == "flakey" && *ver == [1, 5, 0])
}

fn unload(ctl: &mut Control, name: &str) -> Answer {
    ctl.cmd("module_unload", name)
}

fn table_line(ctl: &mut Control, name: &str) -> String {
    let mut d = request("table", name);
    d.set_u32("flags", 0x10);
    let reply = ctl.run(&d).ok().dict();
    let entry = reply.get_array("cmd_data").unwrap()[0].as_dict().unwrap().clone();
    format!("{} {}", entry.get_str("type").unwrap(), entry.get_str("params").unwrap_or(""))
}

#[test]
fn without_the_built_in_flakey_a_table_of_it_is_refused() {
    let host = Host::start(&[4 * common::MIB], &["--without-target", "flakey"]);
    let mut ctl = host.control();
    assert!(!has_flakey(&mut ctl));
    ctl.cmd("create", "f").ok();
    let answer = ctl.run(&reload("f", &[(0, 2048, "flakey", "254:0 0 0 60")]));
    assert_eq!((answer.command, answer.detail.as_str()), (ENOENT, "line 0: unknown target type flakey"));
    // Unknown built-ins cannot be left out.
    let mut bad = Host::start(&[common::MIB], &[]);
    let mut child = bad.child.take().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(bad.spawn(&["--without-target", "nosuch"]).unwrap_err().contains("--without-target nosuch"));
}

#[test]
fn the_flakey_module_maps_as_flakey_and_stays_while_used() {
    let so = flakey_module().display().to_string();
    let host = Host::start(&[8 * common::MIB], &["--without-target", "flakey", "--target-module", &so]);
    assert!(host.log().contains("target module dm_target_flakey"), "{}", host.log());
    let mut ctl = host.control();
    assert!(has_flakey(&mut ctl), "{:?}", targets(&mut ctl));

    // Down for the whole test, dropping writes: a write succeeds and leaves the image alone;
    // reads come from the image.
    let before = pattern(5, 64 * KIB);
    write_image(host.image(0), common::MIB, &before);
    ctl.make_device("drop", &[(0, 4096, "flakey", "254:0 2048 0 3600 1 drop_writes")]);
    assert_eq!(table_line(&mut ctl, "drop"), "flakey 254:0 2048 0 3600 1 drop_writes ");
    let mut nbd = host.nbd("drop");
    assert_eq!(nbd.write(0, &pattern(6, 64 * KIB)), 0);
    assert_eq!(read_image(host.image(0), common::MIB, 64 * KIB), before, "a dropped write reached the image");
    assert_eq!(nbd.read(0, 64 * KIB as u32).unwrap(), before);

    // Down, corrupting byte 1 of every write to 0: the image gets the write with that byte.
    ctl.make_device("corrupt", &[(0, 2048, "flakey", "254:0 8192 0 3600 5 corrupt_bio_byte 1 w 0 0")]);
    let mut nbd2 = host.nbd("corrupt");
    let data = vec![0x77u8; 4 * KIB];
    assert_eq!(nbd2.write(8 * KIB as u64, &data), 0);
    let mut expected = data.clone();
    expected[0] = 0;
    assert_eq!(read_image(host.image(0), 4 * common::MIB + 8 * KIB as u64, 4 * KIB), expected);
    // Up (no down interval): everything passes.
    ctl.make_device("up", &[(0, 2048, "flakey", "254:0 12288 3600 0")]);
    let mut nbd3 = host.nbd("up");
    assert_eq!(nbd3.write(0, &[0x42; 512]), 0);
    assert_eq!(read_image(host.image(0), 6 * common::MIB, 512), vec![0x42; 512]);

    // Messages: flakey has none, through the module neither.
    let mut m = request("message", "drop");
    m.set_u64("sector", 0);
    m.set_string("message", b"drop_writes");
    let answer = ctl.run(&m);
    assert_eq!((answer.command, answer.detail.as_str()), (EINVAL, "Target type does not support messages"));

    // Unloading is refused while tables use the module; the module and its tables stay.
    let answer = unload(&mut ctl, "dm_target_flakey");
    assert_eq!((answer.command, answer.detail.as_str()), (EBUSY, "module dm_target_flakey is in use"));
    assert!(has_flakey(&mut ctl));
    assert_eq!(nbd3.read(0, 512).unwrap(), vec![0x42; 512]);
    drop((nbd, nbd2, nbd3));
    for name in ["drop", "corrupt", "up"] {
        // The NBD connections may still be closing: retry while the device is busy.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let answer = ctl.cmd("remove", name);
            if answer.command == 0 {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "remove {name}: {answer:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    unload(&mut ctl, "dm_target_flakey").ok();
    assert!(!has_flakey(&mut ctl));
    assert_eq!(unload(&mut ctl, "dm_target_flakey").command, ENOENT);
    ctl.cmd("create", "again").ok();
    assert_eq!(ctl.run(&reload("again", &[(0, 2048, "flakey", "254:0 0 0 60")])).command, ENOENT);

    // Loaded again through the control socket: the reply lists the module's types.
    let mut load = request("module_load", "");
    load.set_string("path", so.as_bytes());
    let reply = ctl.run(&load).ok().dict();
    assert_eq!(reply.get_array("cmd_data"), Some(&[Value::String(b"flakey".to_vec())][..]));
    assert_eq!(ctl.run(&load).command, 17, "loaded twice");
    assert!(has_flakey(&mut ctl));
    assert!(host.log().contains("target module dm_target_flakey") && host.log().contains("unloaded"));
}

#[test]
fn a_table_naming_flakey_autoloads_the_module_from_the_module_dir() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(flakey_module(), dir.path().join("dm_target_flakey.so")).unwrap();
    let dir_arg = dir.path().display().to_string();
    let mut host = Host::start(&[4 * common::MIB], &["--without-target", "flakey", "--module-dir", &dir_arg]);
    let mut ctl = host.control();
    assert!(!has_flakey(&mut ctl));
    // A type with no module file: refused as unknown.
    ctl.cmd("create", "x").ok();
    assert_eq!(ctl.run(&reload("x", &[(0, 8, "nosuch", "")])).command, ENOENT);
    // flakey: dm_target_flakey.so is loaded, registers flakey, and the table loads.
    ctl.make_device("f", &[(0, 2048, "flakey", "254:0 0 3600 0")]);
    assert!(has_flakey(&mut ctl));
    assert!(host.log().contains("dm_target_flakey.so) loaded: flakey"), "{}", host.log());
    let mut nbd = host.nbd("f");
    assert_eq!(nbd.write(4096, &[0x5a; 4096]), 0);
    assert_eq!(read_image(host.image(0), 4096, 4096), vec![0x5a; 4096]);
    drop(nbd);
    // At exit the module is in use (the table lives): it stays loaded, and dmhost exits cleanly.
    host.signal(libc::SIGTERM);
    let status = host.wait(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", host.log());
    assert!(host.log().contains("target module dm_target_flakey stays loaded until exit"), "{}", host.log());
}

#[test]
fn a_bad_module_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let not_a_module = dir.path().join("dm_target_junk.so");
    std::fs::write(&not_a_module, b"not an ELF object").unwrap();
    let mut host = Host::start(&[common::MIB], &[]);
    let mut child = host.child.take().unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let err = host.spawn(&["--target-module", &not_a_module.display().to_string()]).unwrap_err();
    assert!(err.contains("--target-module: cannot load"), "{err}");
    // A module whose type the core has already: refused, and nothing stays registered.
    let so = flakey_module().display().to_string();
    let err = host.spawn(&["--target-module", &so]).unwrap_err();
    assert!(err.contains("type 0 refused (File exists (EEXIST))"), "{err}");
}
