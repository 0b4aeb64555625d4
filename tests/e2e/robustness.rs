//! What must not take dmhost down or leave a device stuck: removing a device that is open
//! (refused, through both front-ends of the real dmctl), malformed control requests (broken
//! frames, text that is not a plist, plists that are not requests, and a few hundred mutants of
//! real requests), and clients, NBD and control, that vanish in the middle of a request.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use dm_e2e::{
    eventually, greet, have, opt_go, read_file_at, request_header, tagged, Host, Nbd, Rng, CMD_READ, CMD_WRITE, KIB,
    MIB,
};

const LIN_TABLE: &str = "0 16384 linear 254:0 2048";

fn host_with_lin() -> Host {
    let host = Host::start(&[16 * MIB, 16 * MIB], &[]);
    host.dmsetup(&["create", "lin", "--table", LIN_TABLE]).ok();
    host
}

/// A request dictionary as libdm writes it (XML, TAB indentation, keys sorted).
fn plist(command: &str, name: Option<&str>) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \"-//Apple Computer//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n",
    );
    s.push_str(&format!("\t<key>command</key>\n\t<string>{command}</string>\n"));
    if let Some(name) = name {
        s.push_str(&format!("\t<key>name</key>\n\t<string>{name}</string>\n"));
    }
    s.push_str("\t<key>version</key>\n\t<array>\n\t\t<integer>4</integer>\n\t\t<integer>16</integer>\n\t\t<integer>0</integer>\n\t</array>\n</dict>\n</plist>\n");
    s
}

/// A frame: length, text, NUL.
fn frame(text: &[u8]) -> Vec<u8> {
    let mut out = ((text.len() + 1) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(text);
    out.push(0);
    out
}

/// One reply frame: (transport errno, command errno, reply text length, detail).
fn read_reply(s: &mut UnixStream) -> io::Result<(i32, i32, usize, String)> {
    let mut word = [0u8; 4];
    let mut next = |s: &mut UnixStream| -> io::Result<u32> {
        s.read_exact(&mut word)?;
        Ok(u32::from_be_bytes(word))
    };
    let transport = next(s)? as i32;
    let command = next(s)? as i32;
    let m = next(s)? as usize;
    assert!(m < 64 << 20, "absurd reply length {m}");
    let mut text = vec![0; m];
    s.read_exact(&mut text)?;
    assert!(m == 0 || text.last() == Some(&0), "reply text must end in NUL");
    let k = next(s)? as usize;
    assert!(k < 1 << 20, "absurd detail length {k}");
    let mut detail = vec![0; k];
    s.read_exact(&mut detail)?;
    Ok((transport, command, m, String::from_utf8_lossy(&detail).into_owned()))
}

fn control(host: &Host) -> UnixStream {
    let s = UnixStream::connect(&host.control).expect("connect to the control socket");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Whether the peer closed the connection.
fn closed(s: &mut UnixStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.read(&mut b), Ok(0))
}

/// dmhost is alive and serving: the process runs, both front-ends answer, the device `lin`
/// still has its table, and I/O through NBD works (by qemu-io too when it is installed).
#[track_caller]
fn assert_serving(host: &mut Host, nbd: &mut Nbd, round: u64) {
    assert!(host.alive(), "dmhost died:\n{}", host.log());
    host.dmctl(&["version"]).ok();
    assert_eq!(host.dmsetup(&["table", "lin"]).ok().stdout, format!("{LIN_TABLE}\n"));
    let data = tagged(round, 0, 64 * KIB as usize);
    assert_eq!(nbd.write(0, &data), 0);
    assert_eq!(nbd.read(0, 64 * KIB as u32), Ok(data));
    if have("qemu-io") {
        host.qemu_io_ok(
            "lin",
            &[format!("write -P 0x{:02x} 1m 64k", round % 256), format!("read -P 0x{:02x} 1m 64k", round % 256)],
        );
    }
}

#[test]
fn remove_while_open_is_refused() {
    let mut host = host_with_lin();
    let mut nbd = host.nbd("lin");
    assert_eq!(host.open_count("lin"), 1);

    let r = host.dmsetup(&["remove", "lin"]).code(1);
    assert_eq!(r.stderr, "device-mapper: remove ioctl on lin  failed: Device busy\nCommand failed.\n");
    let r = host.dmctl(&["remove", "lin"]).code(1);
    assert!(r.stderr.starts_with("dmctl: remove of lin failed: Device busy (EBUSY)"), "{r:?}");
    let r = host.dmctl(&["setup", "remove", "lin"]).code(1);
    assert!(r.stderr.contains("failed: Device busy"), "{r:?}");
    // Refused means untouched: the open client keeps working and the table is still there.
    assert_eq!(nbd.write(4096, &[0x77; 4096]), 0);
    assert_eq!(read_file_at(&host.images[0], MIB + 4096, 4096), vec![0x77; 4096]);
    assert_eq!(host.dmsetup(&["ls"]).ok().stdout, "lin\t(169:1)\n");

    // A device stacked on lin holds it open too.
    host.dmsetup(&["create", "top", "--table", "0 8192 linear /dev/mapper/lin 0"]).ok();
    nbd.disconnect();
    assert!(eventually(Duration::from_secs(30), || host.open_count("lin") == 1), "the NBD open was not released");
    host.dmctl(&["remove", "lin"]).code(1);
    host.dmctl(&["remove", "top"]).ok();

    // With nobody holding it, remove works.
    assert_eq!(host.open_count("lin"), 0);
    host.dmctl(&["remove", "lin"]).ok();
    assert_eq!(host.dmsetup(&["ls"]).ok().stdout, "No devices found\n");
    assert!(Nbd::connect(&host.nbd, "lin").is_err(), "a removed device is still exported");
    host.stop_cleanly();
}

#[test]
fn malformed_control_requests_leave_dmhost_serving() {
    let mut host = host_with_lin();
    let mut nbd = host.nbd("lin");
    assert_serving(&mut host, &mut nbd, 1);

    // Broken frames: answered with a transport errno, the connection closed.
    for (bytes, errno) in [
        (0u32.to_be_bytes().to_vec(), 22),
        (u32::MAX.to_be_bytes().to_vec(), 7),
        ((200u32 << 20).to_be_bytes().to_vec(), 7),
    ] {
        let mut s = control(&host);
        s.write_all(&bytes).unwrap();
        let (transport, _, _, _) = read_reply(&mut s).expect("a reply to a bad frame");
        assert_eq!(transport, errno);
        assert!(closed(&mut s));
    }
    assert_serving(&mut host, &mut nbd, 2);

    // Well-framed text that is not a request: every one is answered, on one connection.
    let deep = format!("<plist version=\"1.0\">{}{}</plist>", "<array>".repeat(5000), "</array>".repeat(5000));
    let wide = format!(
        "<plist><dict>{}</dict></plist>",
        (0..5_000).map(|i| format!("<key>k{i}</key><true/>")).collect::<String>()
    );
    let texts: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not xml at all".to_vec(),
        vec![0xff; 4096],
        b"<plist version=\"1.0\"><dict><key>command</key><string>names</string></dict></plist>".to_vec(),
        b"<plist version=\"1.0\"><array/></plist>".to_vec(),
        plist("names", None).replace("<integer>4</integer>", "<integer>3</integer>").into_bytes(),
        plist("no-such-command", None).into_bytes(),
        plist("info", None).into_bytes(),
        plist("info", Some(&"x".repeat(10_000))).into_bytes(),
        plist("remove", Some("lin\u{0}")).into_bytes(),
        plist("names", None).replace("</dict>", "").into_bytes(),
        plist("names", None).replace("<string>names</string>", "<string>&bogus;</string>").into_bytes(),
        plist("names", None).replace("<integer>16</integer>", "<integer>0x1000000000000000000</integer>").into_bytes(),
        plist("reload", Some("lin")).into_bytes(),
        plist("reload", Some("lin")).replace("</dict>\n</plist>", "\t<key>cmd_data</key>\n\t<array><dict><key>type</key><string>linear</string></dict></array>\n</dict>\n</plist>").into_bytes(),
        deep.into_bytes(),
        wide.into_bytes(),
    ];
    let mut s = control(&host);
    for (i, text) in texts.iter().enumerate() {
        s.write_all(&frame(text)).unwrap_or_else(|e| panic!("text {i}: {e}"));
        let (transport, command, m, detail) = read_reply(&mut s).unwrap_or_else(|e| panic!("text {i}: {e}"));
        assert!(
            transport != 0 || command != 0,
            "{:?} was accepted (reply {m} bytes, {detail})",
            String::from_utf8_lossy(&text[..text.len().min(80)])
        );
    }
    // The same connection still serves a good request.
    s.write_all(&frame(plist("names", None).as_bytes())).unwrap();
    assert_eq!(read_reply(&mut s).unwrap().0, 0);
    assert_serving(&mut host, &mut nbd, 3);

    // Mutants of real requests (bytes flipped, dropped, inserted, cut; lengths that lie): every
    // one gets a reply or a closed connection, never a dead server or a hung one.
    let seeds: Vec<String> = vec![
        plist("names", None),
        plist("version", None),
        plist("info", Some("junk")),
        plist("create", Some("junk")),
        plist("table", Some("junk")),
    ];
    let mut rng = Rng::new(42);
    let mut s = control(&host);
    for i in 0..400 {
        let mut text = seeds[i % seeds.len()].clone().into_bytes();
        for _ in 0..1 + rng.below(4) {
            if text.is_empty() {
                text.push(b'<');
            }
            let at = rng.below(text.len() as u64) as usize;
            match rng.below(4) {
                0 => text[at] = rng.next_u64() as u8,
                1 => {
                    text.remove(at);
                }
                2 => text.insert(at, b"<>&\"\0\xff/"[rng.below(7) as usize]),
                _ => text.truncate(at),
            }
        }
        let mut bytes = frame(&text);
        if i % 50 == 49 {
            // A length longer than what follows: the reply waits for bytes that never come, so
            // close the sending side.
            bytes[0..4].copy_from_slice(&((text.len() + 100) as u32).to_be_bytes());
            s.write_all(&bytes).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            assert!(closed(&mut s), "a truncated frame did not end the connection");
            s = control(&host);
            continue;
        }
        if s.write_all(&bytes).is_err() {
            s = control(&host);
            s.write_all(&bytes).unwrap();
        }
        match read_reply(&mut s) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => s = control(&host),
            Err(e) => panic!("mutant {i}: no reply and no close: {e}"),
        }
    }
    assert_serving(&mut host, &mut nbd, 4);
    // Whatever the mutants created can be listed and removed with the real tools.
    for line in host.dmsetup(&["ls"]).ok().stdout.lines() {
        let name = line.split('\t').next().unwrap();
        if name != "lin" {
            host.dmsetup(&["remove", name]).ok();
        }
    }
    assert_eq!(host.dmsetup(&["ls"]).ok().stdout, "lin\t(169:1)\n");
    nbd.disconnect();
    host.stop_cleanly();
}

/// Connects to the NBD socket and negotiates `export`.
fn nbd_stream(path: &Path, export: &str) -> UnixStream {
    Nbd::connect(path, export).expect("NBD connect").stream
}

#[test]
fn clients_that_vanish_mid_request_leave_dmhost_serving() {
    let mut host = host_with_lin();
    let mut nbd = host.nbd("lin");
    let old = tagged(9, 0, MIB as usize);
    assert_eq!(nbd.write(2 * MIB, &old), 0);

    // NBD: gone before the greeting, in the middle of an option, of a request header, of a
    // write's payload, and with replies of pipelined reads unread.
    drop(UnixStream::connect(&host.nbd).unwrap());
    {
        let mut s = UnixStream::connect(&host.nbd).unwrap();
        greet(&mut s).unwrap();
        let go = opt_go("lin");
        s.write_all(&go[..go.len() / 2]).unwrap();
    }
    {
        let mut s = nbd_stream(&host.nbd, "lin");
        s.write_all(&request_header(CMD_READ, 0, 1, 0, 4096)[..13]).unwrap();
    }
    {
        let mut s = nbd_stream(&host.nbd, "lin");
        s.write_all(&request_header(CMD_WRITE, 0, 1, 2 * MIB, MIB as u32)).unwrap();
        s.write_all(&[0xee; 100 * KIB as usize]).unwrap();
    }
    {
        let mut s = nbd_stream(&host.nbd, "lin");
        for h in 0..32 {
            s.write_all(&request_header(CMD_READ, 0, h, h * 64 * KIB, 64 * KIB as u32)).unwrap();
        }
    }
    {
        // Writes parked on a suspended device, their client gone before the resume.
        let mut s = nbd_stream(&host.nbd, "lin");
        host.dmsetup(&["suspend", "lin"]).ok();
        for h in 0..8 {
            s.write_all(&request_header(CMD_WRITE, 0, h, 4 * MIB + h * 4096, 4096)).unwrap();
            s.write_all(&[0x99; 4096]).unwrap();
        }
        // Nothing answers while suspended: the client may as well give up.
    }
    host.dmsetup(&["resume", "lin"]).ok();

    // Control: gone in the middle of a header, of a request, and before reading a reply (of a
    // request that changes state: the suspend still happens).
    {
        let mut s = control(&host);
        s.write_all(&[0, 0]).unwrap();
    }
    {
        let mut s = control(&host);
        s.write_all(&1000u32.to_be_bytes()).unwrap();
        s.write_all(b"<plist").unwrap();
    }
    {
        let mut s = control(&host);
        s.write_all(&frame(plist("names", None).as_bytes())).unwrap();
    }
    {
        let mut s = control(&host);
        s.write_all(&frame(plist("suspend", Some("lin")).as_bytes())).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        // The reply tells when it is done; then the client goes without reading the rest.
        let mut first = [0u8; 4];
        s.read_exact(&mut first).unwrap();
    }
    assert_eq!(host.info("lin")["State"], "SUSPENDED");
    host.dmctl(&["resume", "lin"]).ok();

    // Every vanished NBD client's open is released (only `nbd` holds the device), the partial
    // write was not applied.
    assert!(
        eventually(Duration::from_secs(30), || host.open_count("lin") == 1),
        "opens of vanished clients were not released: {}",
        host.open_count("lin")
    );
    assert_eq!(nbd.read(2 * MIB, MIB as u32), Ok(old), "a write whose payload never arrived was applied");
    // The parked writes ran after the resume or not at all (the server may have stopped reading
    // them when their client vanished), but none ran in part.
    let parked = nbd.read(4 * MIB, 8 * 4096).expect("read");
    for block in parked.chunks(4096) {
        assert!(block == [0x99; 4096] || block == [0; 4096], "a parked write ran in part");
    }
    assert_serving(&mut host, &mut nbd, 5);

    nbd.disconnect();
    assert!(eventually(Duration::from_secs(30), || host.open_count("lin") == 0));
    host.dmctl(&["remove", "lin"]).ok();
    host.stop_cleanly();
}
