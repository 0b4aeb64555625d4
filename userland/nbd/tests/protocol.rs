//! The server driven by a raw protocol client: handshake, options, commands,
//! errors, concurrency, failures and shutdown.

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::*;
use dm_nbd::{Command, Server};

// ---------------------------------------------------------------------------
// Handshake
// ---------------------------------------------------------------------------

#[test]
fn greeting_bytes_and_unknown_client_flags() {
    let (run, _, _) = start_default();
    let mut c = run.client();
    let g = c.read_n(18);
    let mut want = b"NBDMAGICIHAVEOPT".to_vec();
    want.extend_from_slice(&[0x00, 0x03]);
    assert_eq!(g, want);
    // Bit 2 is not a client flag: the server must hang up.
    c.s.write_all(&4u32.to_be_bytes()).unwrap();
    c.expect_closed();
}

#[test]
fn list_names_every_export() {
    let (run, _, _) = start_default();
    let mut c = run.client().handshake();
    c.send_option(OPT_LIST, &[]);
    let replies = c.option_replies();
    assert_eq!(replies.len(), 3, "{replies:?}");
    for (r, name) in replies.iter().zip(["disk", "ro"]) {
        assert_eq!(r.option, OPT_LIST);
        assert_eq!(r.kind, REP_SERVER);
        let mut want = (name.len() as u32).to_be_bytes().to_vec();
        want.extend_from_slice(name.as_bytes());
        assert_eq!(r.data, want);
    }
    assert_eq!(replies[2], OptReply { option: OPT_LIST, kind: REP_ACK, data: vec![] });

    // LIST carries no data; with data it is invalid, and haggling goes on.
    c.send_option(OPT_LIST, b"junk");
    assert_eq!(c.option_reply().kind, REP_ERR_INVALID);
    c.send_option(OPT_ABORT, &[]);
    assert_eq!(c.option_reply(), OptReply { option: OPT_ABORT, kind: REP_ACK, data: vec![] });
    c.expect_closed();
    assert_eq!(run.exports.counts("disk"), (0, 0));
}

#[test]
fn info_describes_without_keeping_open() {
    let (run, _, _) = start_default();
    let mut c = run.client().handshake();
    c.send_option(OPT_INFO, &info_payload("ro", &[INFO_NAME, INFO_DESCRIPTION, INFO_BLOCK_SIZE]));
    let replies = c.option_replies();
    assert!(replies.iter().all(|r| r.option == OPT_INFO));
    let info = |t: u16| {
        replies
            .iter()
            .find(|r| r.kind == REP_INFO && be16(&r.data) == t)
            .unwrap_or_else(|| panic!("info {t} missing: {replies:?}"))
            .data
            .clone()
    };
    let export = info(INFO_EXPORT);
    assert_eq!(export.len(), 12);
    assert_eq!(be64(&export[2..]), 64 << 10);
    assert_eq!(be16(&export[10..]), RW_FLAGS | READ_ONLY);
    assert_eq!(&info(INFO_NAME)[2..], b"ro");
    assert_eq!(&info(INFO_DESCRIPTION)[2..], b"RAM disk ro");
    let bs = info(INFO_BLOCK_SIZE);
    assert_eq!(bs.len(), 14);
    assert_eq!((be32(&bs[2..]), be32(&bs[6..]), be32(&bs[10..])), (512, 4096, 32 << 20));
    assert_eq!(replies.last().unwrap().kind, REP_ACK);
    assert_eq!(replies.len(), 5);

    // INFO leaves haggling open; the default info() opened and closed it.
    assert_eq!(run.exports.counts("ro"), (1, 1));
    c.send_option(OPT_INFO, &info_payload("nope", &[]));
    assert_eq!(c.option_replies(), vec![OptReply { option: OPT_INFO, kind: REP_ERR_UNKNOWN, data: vec![] }]);
}

#[test]
fn go_with_block_size_then_unknown_and_malformed() {
    let (run, disk, _) = start_default();
    let mut c = run.client().handshake();

    // Unknown export: an error and no INFO replies; haggling continues.
    c.send_option(OPT_GO, &info_payload("missing", &[INFO_BLOCK_SIZE]));
    assert_eq!(c.option_replies(), vec![OptReply { option: OPT_GO, kind: REP_ERR_UNKNOWN, data: vec![] }]);

    // Name length pointing past the payload.
    let mut bad = info_payload("disk", &[]);
    bad[3] = 99;
    c.send_option(OPT_GO, &bad);
    assert_eq!(c.option_reply().kind, REP_ERR_INVALID);

    c.send_option(OPT_GO, &info_payload("disk", &[INFO_BLOCK_SIZE]));
    let replies = c.option_replies();
    let kinds: Vec<u16> = replies.iter().filter(|r| r.kind == REP_INFO).map(|r| be16(&r.data)).collect();
    assert!(kinds.contains(&INFO_EXPORT) && kinds.contains(&INFO_BLOCK_SIZE), "{kinds:?}");
    assert!(!kinds.contains(&INFO_NAME), "name was not asked for");
    assert_eq!(replies.last().unwrap().kind, REP_ACK);
    assert_eq!(run.exports.counts("disk"), (1, 0));

    // Transmission works right after the ACK.
    assert_eq!(c.read(1, 512, 512).unwrap(), disk.bytes(512, 512));
    c.disconnect();
    assert!(run.exports.wait_closes("disk", 1));
}

#[test]
fn empty_name_is_the_default_export() {
    let (run, _, _) = start_default();
    let mut c = run.client().handshake();
    c.send_option(OPT_GO, &info_payload("", &[INFO_NAME]));
    let replies = c.option_replies();
    let name = replies.iter().find(|r| r.kind == REP_INFO && be16(&r.data) == INFO_NAME).unwrap();
    assert_eq!(&name.data[2..], b"disk");
    assert_eq!(replies.last().unwrap().kind, REP_ACK);
    assert_eq!(run.exports.counts("disk"), (1, 0));
    c.disconnect();
    assert!(run.exports.wait_closes("disk", 1));

    // Without a default, the empty name is unknown.
    let exports = RamExports::new(vec![("a", RamExport::new(4096, false, Mode::Immediate))], None);
    let run = start(exports);
    let mut c = run.client().handshake();
    c.send_option(OPT_GO, &info_payload("", &[]));
    assert_eq!(c.option_reply().kind, REP_ERR_UNKNOWN);
}

#[test]
fn export_name_pads_unless_no_zeroes() {
    let (run, disk, _) = start_default();
    for (client_flags, padding) in [(1u32, 124usize), (3, 0)] {
        let mut c = run.client();
        c.handshake_with(client_flags);
        c.send_option(OPT_EXPORT_NAME, b"disk");
        let r = c.read_n(10 + padding);
        assert_eq!(be64(&r), 1 << 20);
        assert_eq!(be16(&r[8..]), RW_FLAGS);
        assert!(r[10..].iter().all(|&b| b == 0));
        // The very next bytes are the reply to our first request.
        assert_eq!(c.read(7, 0, 512).unwrap(), disk.bytes(0, 512));
        c.disconnect();
    }
    assert!(run.exports.wait_closes("disk", 2));
}

#[test]
fn export_name_unknown_hangs_up() {
    let (run, _, _) = start_default();
    let mut c = run.client().handshake();
    c.send_option(OPT_EXPORT_NAME, b"nonexistent");
    c.expect_closed();
}

#[test]
fn unsupported_options_are_refused_and_skipped() {
    let (run, disk, _) = start_default();
    let mut c = run.client().handshake();
    let cases: [(u32, &[u8]); 7] = [
        (OPT_STARTTLS, b""),
        (OPT_STRUCTURED_REPLY, b""),
        (OPT_LIST_META_CONTEXT, b"\0\0\0\x04disk\0\0\0\x01\0\0\0\x0fbase:allocation"),
        (OPT_SET_META_CONTEXT, b"\0\0\0\x04disk\0\0\0\x01\0\0\0\x0fbase:allocation"),
        (11, b""),
        (4, b"peek"),
        (0xdead, &[0x55; 300]),
    ];
    for (opt, payload) in cases {
        c.send_option(opt, payload);
        assert_eq!(c.option_reply(), OptReply { option: opt, kind: REP_ERR_UNSUP, data: vec![] }, "option {opt}");
    }
    c.go("disk");
    assert_eq!(c.read(1, 0, 1024).unwrap(), disk.bytes(0, 1024));
}

#[test]
fn abusive_handshakes_are_cut_off() {
    let (run, _, _) = start_default();

    // An option payload far beyond any name.
    let mut c = run.client().handshake();
    let mut m = IHAVEOPT.to_be_bytes().to_vec();
    m.extend_from_slice(&OPT_GO.to_be_bytes());
    m.extend_from_slice(&(1u32 << 30).to_be_bytes());
    c.s.write_all(&m).unwrap();
    c.expect_closed();

    // Endless option rounds.
    let mut c = run.client().handshake();
    let mut answered = 0;
    for _ in 0..200 {
        let mut m = IHAVEOPT.to_be_bytes().to_vec();
        m.extend_from_slice(&0x99u32.to_be_bytes());
        m.extend_from_slice(&0u32.to_be_bytes());
        if c.s.write_all(&m).is_err() {
            break;
        }
        let mut h = [0u8; 20];
        if std::io::Read::read_exact(&mut c.s, &mut h).is_err() {
            break;
        }
        answered += 1;
    }
    assert_eq!(answered, 64, "the server must stop after its option limit");

    // Bad option magic.
    let mut c = run.client().handshake();
    c.s.write_all(&[0u8; 16]).unwrap();
    c.expect_closed();

    // The server is still fine.
    let (c, size, _) = Client::open(&run.socket, "disk");
    assert_eq!(size, 1 << 20);
    c.disconnect();
}

// ---------------------------------------------------------------------------
// Transmission
// ---------------------------------------------------------------------------

#[test]
fn write_then_read_back() {
    let (run, disk, _) = start_default();
    let (mut c, size, flags) = Client::open(&run.socket, "disk");
    assert_eq!((size, flags), (1 << 20, RW_FLAGS));
    let data = pattern(64 << 10, 7);
    assert_eq!(c.write(0, 1, 4096, &data), 0);
    assert_eq!(disk.bytes(4096, data.len()), data);
    assert_eq!(c.read(2, 4096, data.len() as u32).unwrap(), data);
    // The very last sector.
    let tail = pattern(512, 99);
    assert_eq!(c.write(0, 3, (1 << 20) - 512, &tail), 0);
    assert_eq!(c.read(4, (1 << 20) - 512, 512).unwrap(), tail);
    // A full 32 MiB read is allowed (on a big enough export).
    c.disconnect();

    let big = RamExport::new(33 << 20, false, Mode::Immediate);
    let run = start(RamExports::new(vec![("big", big.clone())], None));
    let (mut c, _, _) = Client::open(&run.socket, "big");
    let got = c.read(5, 512, 32 << 20).unwrap();
    assert_eq!(got, big.bytes(512, 32 << 20));
    c.disconnect();
}

#[test]
fn flush_fua_trim_and_write_zeroes() {
    let (run, disk, _) = start_default();
    let (mut c, _, _) = Client::open(&run.socket, "disk");
    assert_eq!(c.write(FLAG_FUA, 1, 0, &pattern(4096, 1)), 0);
    assert_eq!(c.cmd(0, CMD_FLUSH, 2, 0, 0), 0);
    assert_ne!(disk.bytes(8192, 4096), vec![0; 4096]);
    assert_eq!(c.cmd(FLAG_FUA, CMD_TRIM, 3, 8192, 4096), 0);
    assert_eq!(c.read(4, 8192, 4096).unwrap(), vec![0; 4096]);
    assert_ne!(disk.bytes(16384, 1024), vec![0; 1024]);
    assert_eq!(c.cmd(FLAG_NO_HOLE | FLAG_FUA, CMD_WRITE_ZEROES, 5, 16384, 1024), 0);
    assert_eq!(disk.bytes(16384, 1024), vec![0; 1024]);
    assert_eq!(c.cmd(0, CMD_WRITE_ZEROES, 6, 0, 512), 0);
    // TRIM and WRITE_ZEROES carry no payload, so they may exceed 32 MiB of
    // effect; here the whole export.
    assert_eq!(c.cmd(0, CMD_WRITE_ZEROES, 7, 0, 1 << 20), 0);
    assert_eq!(disk.bytes(0, 1 << 20), vec![0; 1 << 20]);
    assert_eq!(c.cmd(0, CMD_TRIM, 8, 0, 1 << 20), 0);

    let seen = disk.seen();
    let s = |cmd, offset, len, fua, no_hole| Seen { cmd, offset, len, fua, no_hole };
    assert_eq!(
        seen,
        vec![
            s(Command::Write, 0, 4096, true, false),
            s(Command::Flush, 0, 0, false, false),
            s(Command::Trim, 8192, 4096, true, false),
            s(Command::Read, 8192, 4096, false, false),
            s(Command::WriteZeroes, 16384, 1024, true, true),
            s(Command::WriteZeroes, 0, 512, false, false),
            s(Command::WriteZeroes, 0, 1 << 20, false, false),
            s(Command::Trim, 0, 1 << 20, false, false),
        ]
    );
    c.disconnect();

    // Effect lengths beyond 32 MiB, on an export that is big enough.
    let big = RamExport::new(48 << 20, false, Mode::Immediate);
    let run = start(RamExports::new(vec![("big", big.clone())], None));
    let (mut c, _, _) = Client::open(&run.socket, "big");
    assert_eq!(c.cmd(0, CMD_TRIM, 1, 0, 48 << 20), 0);
    assert_eq!(c.cmd(0, CMD_WRITE_ZEROES, 2, 512, (40 << 20) + 512), 0);
    assert_eq!(big.bytes(0, 48 << 20), vec![0; 48 << 20]);
    c.disconnect();
}

#[test]
fn invalid_requests_get_einval_and_reach_nothing() {
    let (run, disk, _) = start_default();
    let (mut c, _, _) = Client::open(&run.socket, "disk");
    let size = 1u64 << 20;
    assert_eq!(c.read(1, 100, 512), Err(EINVAL), "misaligned offset");
    assert_eq!(c.read(2, 0, 1000), Err(EINVAL), "misaligned length");
    assert_eq!(c.read(3, 0, 0), Err(EINVAL), "zero length");
    assert_eq!(c.read(4, size, 512), Err(EINVAL), "past the end");
    assert_eq!(c.read(5, size - 512, 1024), Err(EINVAL), "straddling the end");
    assert_eq!(c.read(6, u64::MAX - 511, 512), Err(EINVAL), "offset overflow");
    assert_eq!(c.read(7, 0, (32 << 20) + 512), Err(EINVAL), "over 32 MiB");
    assert_eq!(c.cmd(0, CMD_TRIM, 8, size - 512, 4096), EINVAL);
    assert_eq!(c.cmd(0, CMD_WRITE_ZEROES, 9, 3, 512), EINVAL);
    assert_eq!(c.cmd(1 << 2, CMD_READ, 10, 0, 512), EINVAL, "unknown command flag");
    for (i, kind) in [5u16, 7, 8, 99, 0xffff].into_iter().enumerate() {
        assert_eq!(c.cmd(0, kind, 20 + i as u64, 0, 512), EINVAL, "command {kind}");
    }
    // A misaligned write: its payload is consumed, so the stream stays in step.
    let before = disk.bytes(0, 2048);
    assert_eq!(c.write(0, 30, 1, &pattern(1000, 3)), EINVAL);
    assert_eq!(c.write(0, 31, size, &pattern(512, 3)), EINVAL);
    assert_eq!(c.read(32, 0, 2048).unwrap(), before);
    // Only the last read reached the export.
    assert_eq!(disk.seen(), vec![Seen { cmd: Command::Read, offset: 0, len: 2048, fua: false, no_hole: false }]);
    c.disconnect();
}

#[test]
fn read_only_export_refuses_writes() {
    let (run, _, ro) = start_default();
    let (mut c, size, flags) = Client::open(&run.socket, "ro");
    assert_eq!(size, 64 << 10);
    assert_eq!(flags, RW_FLAGS | READ_ONLY);
    let before = ro.bytes(0, 4096);
    assert_eq!(c.write(0, 1, 0, &pattern(4096, 5)), EPERM);
    assert_eq!(c.cmd(0, CMD_TRIM, 2, 0, 4096), EPERM);
    assert_eq!(c.cmd(0, CMD_WRITE_ZEROES, 3, 0, 4096), EPERM);
    assert_eq!(c.cmd(0, CMD_FLUSH, 4, 0, 0), 0);
    assert_eq!(c.read(5, 0, 4096).unwrap(), before);
    assert_eq!(ro.bytes(0, 4096), before);
    c.disconnect();
}

#[test]
fn oversized_write_and_bad_magic_disconnect() {
    let (run, disk, _) = start_default();
    let (mut c, _, _) = Client::open(&run.socket, "disk");
    c.request(0, CMD_WRITE, 1, 0, (32 << 20) + 512, &[]);
    c.expect_closed();

    let (mut c, _, _) = Client::open(&run.socket, "disk");
    let mut junk = [0u8; 28];
    junk[..4].copy_from_slice(&0x12345678u32.to_be_bytes());
    c.s.write_all(&junk).unwrap();
    c.expect_closed();
    assert!(run.exports.wait_closes("disk", 2));
    assert!(disk.seen().is_empty());
}

#[test]
fn dropped_completion_replies_eio() {
    let disk = RamExport::new(1 << 20, false, Mode::DropOffsetZero);
    let run = start(RamExports::new(vec![("d", disk.clone())], None));
    let (mut c, _, _) = Client::open(&run.socket, "d");
    assert_eq!(c.read(1, 0, 512), Err(EIO));
    assert_eq!(c.write(0, 2, 0, &[1; 512]), EIO);
    assert_eq!(c.read(3, 512, 512).unwrap(), disk.bytes(512, 512));
    c.disconnect();
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

#[test]
fn requests_run_concurrently_and_complete_out_of_order() {
    let disk = RamExport::new(1 << 20, false, Mode::Gated);
    let run = start(RamExports::new(vec![("d", disk.clone())], None));
    let (mut c, _, _) = Client::open(&run.socket, "d");
    let n = 16u64;
    for h in 0..n {
        c.request(0, CMD_READ, h, h * 4096, 4096, &[]);
    }
    // All of them reach the export before any is answered.
    assert!(disk.wait_held(n as usize), "held {}", disk.held());
    assert_eq!(disk.release_reversed(), n as usize);
    for expect in (0..n).rev() {
        let (err, h) = c.reply();
        assert_eq!((err, h), (0, expect), "replies follow completion order");
        assert_eq!(c.read_n(4096), disk.bytes((h * 4096) as usize, 4096));
    }
    c.disconnect();
}

#[test]
fn slow_requests_do_not_hold_up_fast_ones() {
    let disk = RamExport::new(1 << 20, false, Mode::DelayOffsetZero);
    let run = start(RamExports::new(vec![("d", disk.clone())], None));
    let (mut c, _, _) = Client::open(&run.socket, "d");
    c.request(0, CMD_READ, 100, 0, 512, &[]);
    let payload = pattern(8192, 9);
    c.request(0, CMD_WRITE, 101, 8192, 8192, &payload);
    c.request(0, CMD_READ, 102, 8192, 8192, &[]);
    c.request(0, CMD_FLUSH, 103, 0, 0, &[]);
    assert_eq!(c.reply(), (0, 101));
    assert_eq!(c.reply(), (0, 102));
    assert_eq!(c.read_n(8192), payload);
    assert_eq!(c.reply(), (0, 103));
    assert_eq!(c.reply(), (0, 100), "the delayed read comes last");
    assert_eq!(c.read_n(512), disk.bytes(0, 512));
    c.disconnect();
}

#[test]
fn in_flight_requests_are_bounded() {
    let disk = RamExport::new(1 << 20, false, Mode::Gated);
    let run = start(RamExports::new(vec![("d", disk.clone())], None));
    let (mut c, _, _) = Client::open(&run.socket, "d");
    for h in 0..100u64 {
        c.request(0, CMD_READ, h, (h % 64) * 512, 512, &[]);
    }
    assert!(disk.wait_held(64));
    thread::sleep(Duration::from_millis(200));
    assert_eq!(disk.held(), dm_nbd::MAX_IN_FLIGHT, "the reader must stop at the limit");
    assert_eq!(disk.release_reversed(), 64);
    assert!(disk.wait_held(36));
    assert_eq!(disk.release_reversed(), 36);
    let mut handles: Vec<u64> = (0..100)
        .map(|_| {
            let (err, h) = c.reply();
            assert_eq!(err, 0);
            c.read_n(512);
            h
        })
        .collect();
    handles.sort_unstable();
    assert_eq!(handles, (0..100).collect::<Vec<_>>());
    c.disconnect();
}

#[test]
fn many_clients_at_once() {
    let disk = RamExport::new(4 << 20, false, Mode::Immediate);
    let run = Arc::new(start(RamExports::new(vec![("d", disk.clone())], None)));
    let workers: Vec<_> = (0..8u64)
        .map(|i| {
            let run = run.clone();
            thread::spawn(move || {
                let (mut c, _, _) = Client::open(&run.socket, "d");
                let base = i * (512 << 10);
                for round in 0..20u64 {
                    let data = pattern(16 << 10, (i * 20 + round) as u8);
                    let off = base + round * (16 << 10);
                    assert_eq!(c.write(0, round, off, &data), 0);
                    assert_eq!(c.read(1000 + round, off, data.len() as u32).unwrap(), data);
                }
                c.disconnect();
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert!(run.exports.wait_closes("d", 8));
    assert_eq!(run.exports.counts("d"), (8, 8));
}

// ---------------------------------------------------------------------------
// Failures and shutdown
// ---------------------------------------------------------------------------

#[test]
fn client_vanishing_mid_payload_only_ends_itself() {
    let (run, disk, _) = start_default();
    let (mut c, _, _) = Client::open(&run.socket, "disk");
    let mut m = REQ_MAGIC.to_be_bytes().to_vec();
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(&CMD_WRITE.to_be_bytes());
    m.extend_from_slice(&1u64.to_be_bytes());
    m.extend_from_slice(&0u64.to_be_bytes());
    m.extend_from_slice(&(64u32 << 10).to_be_bytes());
    m.extend_from_slice(&[0xee; 1000]);
    c.s.write_all(&m).unwrap();
    drop(c);
    assert!(run.exports.wait_closes("disk", 1));
    assert!(disk.seen().is_empty(), "the torn write must not reach the export");
    assert_ne!(disk.bytes(0, 512), vec![0xee; 512]);

    let (mut c, _, _) = Client::open(&run.socket, "disk");
    assert_eq!(c.write(0, 1, 0, &pattern(4096, 4)), 0);
    assert_eq!(c.read(2, 0, 4096).unwrap(), pattern(4096, 4));
    c.disconnect();
    assert!(run.exports.wait_closes("disk", 2));
    assert_eq!(run.exports.counts("disk"), (2, 2));
}

#[test]
fn completions_after_the_client_left_are_dropped_and_close_runs_once() {
    let disk = RamExport::new(1 << 20, false, Mode::Gated);
    let run = start(RamExports::new(vec![("d", disk.clone())], None));
    let (mut c, _, _) = Client::open(&run.socket, "d");
    for h in 0..8u64 {
        c.request(0, CMD_READ, h, h * 512, 512, &[]);
    }
    assert!(disk.wait_held(8));
    drop(c);
    // The export is still in use by the held requests: not closed yet.
    thread::sleep(Duration::from_millis(200));
    assert_eq!(run.exports.counts("d"), (1, 0));
    assert_eq!(disk.release_reversed(), 8);
    assert!(run.exports.wait_closes("d", 1));
    thread::sleep(Duration::from_millis(100));
    assert_eq!(run.exports.counts("d"), (1, 1));

    // The server carries on.
    let (mut c, _, _) = Client::open(&run.socket, "d");
    c.request(0, CMD_READ, 9, 0, 512, &[]);
    assert!(disk.wait_held(1));
    disk.release_reversed();
    assert_eq!(c.reply(), (0, 9));
    assert_eq!(c.read_n(512), disk.bytes(0, 512));
    c.disconnect();
}

#[test]
fn shutdown_drains_in_flight_requests() {
    let disk = RamExport::new(1 << 20, false, Mode::Gated);
    let run = start(RamExports::new(vec![("d", disk.clone())], None));
    let (mut c, _, _) = Client::open(&run.socket, "d");
    // A second client still haggling.
    let mut idle = run.client().handshake();
    for h in 0..4u64 {
        c.request(0, CMD_READ, h, h * 512, 512, &[]);
    }
    assert!(disk.wait_held(4));

    let socket = run.socket.clone();
    let exports = run.exports.clone();
    let stopper = thread::spawn(move || {
        run.server.shutdown();
        run
    });
    thread::sleep(Duration::from_millis(200));
    assert!(!stopper.is_finished(), "shutdown must wait for in-flight requests");
    assert_eq!(exports.counts("d"), (1, 0));

    assert_eq!(disk.release_reversed(), 4);
    for expect in (0..4u64).rev() {
        assert_eq!(c.reply(), (0, expect));
        assert_eq!(c.read_n(512), disk.bytes((expect * 512) as usize, 512));
    }
    c.expect_closed();
    idle.expect_closed();
    let run = stopper.join().unwrap();
    assert_eq!(exports.counts("d"), (1, 1));
    assert!(!socket.exists(), "the socket file is removed");
    assert!(UnixStream::connect(&socket).is_err());
    run.server.shutdown(); // a second call is harmless
    assert!(run.server.listen_unix(run.socket.clone()).is_err());
}

#[test]
fn tcp_listener() {
    let disk = RamExport::new(1 << 20, false, Mode::Immediate);
    let exports = RamExports::new(vec![("d", disk.clone())], None);
    let server = Server::new(exports.clone());
    let addr = server.listen_tcp("127.0.0.1:0").unwrap();
    assert_ne!(addr.port(), 0);
    let mut c = Client::tcp(addr).handshake();
    c.go("d");
    let data = pattern(32 << 10, 8);
    assert_eq!(c.write(FLAG_FUA, 1, 65536, &data), 0);
    assert_eq!(c.read(2, 65536, data.len() as u32).unwrap(), data);
    c.disconnect();
    drop(server);
    assert_eq!(exports.counts("d"), (1, 1));
}
