//! The delay target against Linux 6.1: its constructor forms and refusals with Linux's lines and
//! messages, and its timing, ordering, status and suspend behaviour on the in-memory platform's
//! virtual clock.

mod dmtest;

use dmcore::platform::mem::{Fault, MemIo, MemPlatform};
use dmcore::table::{Table, TableLine};
use dmcore::target::StatusKind;
use dmcore::{Core, Errno, Op};
use dmtest::cases::*;
use dmtest::*;

/// Sectors of each RAM disk: room for an 8192-sector line at offset 2048.
const DISK: u64 = 16384;

#[test]
fn every_table_of_the_golden_transcript_prints_as_in_linux() {
    let (core, _) = setup(DISK);
    let cases = golden_cases("04-delay.txt");
    assert_eq!(cases.len(), 4, "{cases:?}");
    for case in &cases {
        check_golden_case(&core, case);
    }
}

#[test]
fn constructor_forms_print_linux_table_and_info_lines() {
    let (core, _) = setup(DISK);
    for (i, &(line, want_table, want_info)) in DELAY_ACCEPTED.iter().enumerate() {
        let name = format!("d{i}");
        create(&core, &name, &[line]).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        assert_eq!(table(&core, &name), vec![want_table], "{line}");
        assert_eq!(status(&core, &name), vec![want_info], "{line}");
        // The TABLE line reloads to the same mapping, and prints the same again.
        assert_eq!(reload(&core, &name, &[want_table]).result, Ok(()), "{want_table}");
        assert_eq!(resume(&core, &name), Ok(()));
        assert_eq!(table(&core, &name), vec![want_table], "{line} reloaded");
        assert_eq!(remove(&core, &name), Ok(()));
    }
}

#[test]
fn refused_argument_lists_carry_linux_messages() {
    let (core, _) = setup(DISK);
    for (i, &(line, message, errno)) in DELAY_REFUSED.iter().enumerate() {
        let name = format!("bad{i}");
        let (e, detail) = create(&core, &name, &[line]).err().unwrap_or_else(|| panic!("{line} accepted"));
        assert_eq!((e, detail.as_str()), (errno, format!("line 0: {message}").as_str()), "{line}");
        assert_eq!(core.minor_of(&name), None);
    }
    // A device that does not exist: Linux says "Device lookup failed" (errno ENODEV there; the
    // in-memory platform's ENOENT here), for each of the three triples.
    for line in [
        "0 8192 delay /dev/nonexistent 0 50",
        "0 8192 delay /dev/vda 0 50 /dev/nonexistent 0 100",
        "0 8192 delay /dev/vda 0 50 /dev/vdb 0 100 /dev/nonexistent 0 1",
    ] {
        let (_, detail) = create(&core, "nodev", &[line]).unwrap_err();
        assert_eq!(detail, "line 0: delay: Device lookup failed", "{line}");
    }
    // Nothing stays open after a refused table.
    assert_eq!((core.platform().opens(VDA), core.platform().opens(VDB)), (0, 0));
}

#[test]
fn ima_records_are_empty_as_in_linux_6_1() {
    let (core, platform) = setup(DISK);
    let line = |params: &str| TableLine { start: 0, len: 8192, target_type: "delay".into(), params: params.into() };
    let t = Table::build(&platform, core.targets(), 1, &[line("/dev/vda 0 50 /dev/vdb 0 100")], false).unwrap();
    assert_eq!(t.status(StatusKind::Ima), vec![(0, 8192, "delay".to_string(), String::new())]);
    assert_eq!(t.status(StatusKind::Table)[0].3, "254:0 0 50 254:16 0 100");
    assert_eq!(t.status(StatusKind::Info)[0].3, "0 0 0");
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect()
}

fn delay_device(core: &Core<MemPlatform>, line: &str) -> u32 {
    create(core, "d", &[line]).unwrap()
}

#[test]
fn a_read_completes_exactly_after_its_delay() {
    let (core, platform) = setup(DISK);
    platform.fill_disk(VDA, 100 * 512, &pattern(4096, 1));
    let minor = delay_device(&core, "0 8192 delay /dev/vda 100 50");
    let (io, req) = platform.request(minor, Op::Read, 0, 4096, None);
    core.submit(minor, io.clone(), req);
    platform.run();
    assert_eq!(io.result(), None, "held at once");
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 1 0 0"]);
    platform.advance(50 * MS - 1);
    assert_eq!(io.result(), None, "not complete 1 ns before its delay");
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 1 0 0"]);
    platform.advance(1);
    assert_eq!(io.result(), Some(Ok(())), "complete at its delay");
    assert_eq!(io.data(), pattern(4096, 1), "read from vda at the line's offset");
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 0 0 0"]);
}

/// Marks the order in which the next child requests run: the n-th to run fails with the n-th
/// of these errnos (the in-memory platform's `Fault::nth`, one fault per rank).
const RANKS: [Errno; 6] = [Errno::EPERM, Errno::ENOENT, Errno::EINTR, Errno::ENXIO, Errno::E2BIG, Errno::EFAULT];

fn mark_order(platform: &MemPlatform, n: usize) {
    for errno in RANKS.iter().take(n) {
        platform.add_fault(Fault::nth(1, *errno));
    }
}

/// The rank (0-based) at which a request's child ran, from the errno it failed with.
fn rank(io: &MemIo) -> Option<usize> {
    match io.result() {
        Some(Err(e)) => RANKS.iter().position(|&r| r == e),
        _ => None,
    }
}

#[test]
fn each_class_uses_its_own_device_offset_and_delay() {
    let (core, platform) = setup(DISK);
    platform.fill_disk(VDA, 8 * 512, &pattern(512, 2));
    platform.fill_disk(VDB, 0, &vec![0xee; 4096 * 512]);
    // A flush reaching vdb fails with ENOSPC: that is how the test sees where it went.
    platform.add_fault(Fault::range(VDB, 0, 1, Errno::ENOSPC).only(&[Op::Flush]));
    let minor = delay_device(&core, "0 8192 delay /dev/vda 0 50 /dev/vdb 1024 100 /dev/vdb 2048 10");
    let t0 = platform.now();
    let (r, req) = platform.request(minor, Op::Read, 8, 512, None);
    core.submit(minor, r.clone(), req);
    let (w, req) = platform.request(minor, Op::Write, 16, 512, Some(&[0x5a; 512]));
    core.submit(minor, w.clone(), req);
    let (f, req) = platform.request(minor, Op::Flush, 0, 0, None);
    core.submit(minor, f.clone(), req);
    let (z, req) = platform.request(minor, Op::Discard, 24, 1024, None);
    core.submit(minor, z.clone(), req);
    platform.run();
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 1 2 1"], "discards are writes");
    let done = || [&r, &w, &f, &z].map(|io| io.result().is_some());

    platform.advance(10 * MS - 1);
    assert_eq!(done(), [false; 4]);
    platform.advance(1);
    assert_eq!(done(), [false, false, true, false], "the flush class at 10 ms");
    assert_eq!(f.result(), Some(Err(Errno::ENOSPC)), "the flush went to vdb");
    platform.advance(40 * MS);
    assert_eq!(done(), [true, false, true, false], "the read class at 50 ms");
    assert_eq!((r.result(), r.data()), (Some(Ok(())), pattern(512, 2)), "from vda at offset 0 + 8");
    platform.advance(50 * MS - 1);
    assert_eq!(done(), [true, false, true, false], "writes not before 100 ms");
    platform.advance(1);
    assert_eq!(platform.now() - t0, 100 * MS);
    assert_eq!(done(), [true; 4], "the write class at 100 ms");
    assert_eq!((w.result(), z.result()), (Some(Ok(())), Some(Ok(()))));
    let vdb = platform.disk(VDB);
    assert_eq!(&vdb[1040 * 512..1041 * 512], &[0x5a; 512][..], "the write at 1024 + 16 on vdb");
    assert!(vdb[1048 * 512..1050 * 512].iter().all(|&b| b == 0), "the discard at 1024 + 24 on vdb");
    assert!(vdb[1050 * 512..1051 * 512].iter().all(|&b| b == 0xee), "and no further");
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 0 0 0"]);
}

#[test]
fn three_and_six_argument_forms_share_triples_as_linux_does() {
    let (core, platform) = setup(DISK);
    platform.add_fault(Fault::range(VDB, 0, 1, Errno::ENOSPC).only(&[Op::Flush]));
    // 6 arguments: flushes use the write triple.
    let minor = delay_device(&core, "0 8192 delay /dev/vda 0 50 /dev/vdb 0 20");
    let (f, req) = platform.request(minor, Op::Flush, 0, 0, None);
    core.submit(minor, f.clone(), req);
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 0 0 1"]);
    platform.advance(20 * MS - 1);
    assert_eq!(f.result(), None);
    platform.advance(1);
    assert_eq!(f.result(), Some(Err(Errno::ENOSPC)), "to vdb at 20 ms");
    assert_eq!(remove(&core, "d"), Ok(()));
    platform.clear_faults();

    // 3 arguments: everything uses the one triple; a FUA write is a write (no preflush).
    let minor = delay_device(&core, "0 8192 delay /dev/vdb 8 30");
    let (w, mut req) = platform.request(minor, Op::Write, 0, 512, Some(&[1; 512]));
    req.fua = true;
    core.submit(minor, w.clone(), req);
    let (f, req) = platform.request(minor, Op::Flush, 0, 0, None);
    core.submit(minor, f.clone(), req);
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 0 1 1"]);
    platform.advance(30 * MS - 1);
    assert_eq!((w.result(), f.result()), (None, None));
    platform.advance(1);
    assert_eq!((w.result(), f.result()), (Some(Ok(())), Some(Ok(()))));
    assert_eq!(&platform.disk(VDB)[8 * 512..9 * 512], &[1; 512][..]);
}

#[test]
fn held_requests_are_released_in_arrival_order_each_after_exactly_its_delay() {
    let (core, platform) = setup(DISK);
    let minor = delay_device(&core, "0 8192 delay /dev/vda 0 50 /dev/vdb 0 50");
    // Three arrivals at the same instant, across the two classes, then two later reads.
    let mut ios = Vec::new();
    for (op, sector) in [(Op::Read, 10), (Op::Write, 20), (Op::Read, 30)] {
        let data = (op == Op::Write).then(|| vec![9u8; 512]);
        let (io, req) = platform.request(minor, op, sector, 512, data.as_deref());
        core.submit(minor, io.clone(), req);
        ios.push(io);
    }
    platform.advance(7 * MS);
    let (late1, req) = platform.request(minor, Op::Read, 40, 512, None);
    core.submit(minor, late1.clone(), req);
    platform.advance(3 * MS);
    let (late2, req) = platform.request(minor, Op::Read, 50, 512, None);
    core.submit(minor, late2.clone(), req);
    ios.push(late1);
    ios.push(late2);
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 4 1 0"]);
    mark_order(&platform, 5);

    let completed = |ios: &[MemIo]| ios.iter().map(|io| io.result().is_some()).collect::<Vec<_>>();
    platform.advance(40 * MS - 1);
    assert_eq!(completed(&ios), vec![false; 5], "nothing before 50 ms");
    platform.advance(1);
    assert_eq!(completed(&ios), vec![true, true, true, false, false], "the first three at 50 ms");
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 2 0 0"]);
    platform.advance(7 * MS - 1);
    assert_eq!(completed(&ios), vec![true, true, true, false, false]);
    platform.advance(1);
    assert_eq!(completed(&ios), vec![true, true, true, true, false], "the fourth at 57 ms, not later");
    platform.advance(3 * MS - 1);
    assert_eq!(completed(&ios), vec![true, true, true, true, false]);
    platform.advance(1);
    assert_eq!(completed(&ios), vec![true; 5], "the fifth at 60 ms");
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 0 0 0"]);
    let order: Vec<Option<usize>> = ios.iter().map(rank).collect();
    assert_eq!(order, vec![Some(0), Some(1), Some(2), Some(3), Some(4)], "released in arrival order");
}

#[test]
fn a_long_stream_keeps_every_request_to_its_own_deadline() {
    let (core, platform) = setup(DISK);
    let minor = delay_device(&core, "0 8192 delay /dev/vda 0 5");
    // One read every 1 ms for 40 ms; each completes exactly 5 ms after it arrived.
    let mut pending = Vec::new();
    for step in 0..60u64 {
        if step < 40 {
            let (io, req) = platform.request(minor, Op::Read, step, 512, None);
            core.submit(minor, io.clone(), req);
            pending.push((platform.now(), io));
        }
        for (at, io) in &pending {
            let due = at + 5 * MS;
            assert_eq!(io.result().is_some(), platform.now() >= due, "arrived {at}, now {}", platform.now());
        }
        platform.advance(MS);
    }
    assert!(pending.iter().all(|(_, io)| io.result() == Some(Ok(()))));
}

#[test]
fn zero_delay_passes_through_at_once() {
    let (core, platform) = setup(DISK);
    platform.fill_disk(VDA, 0, &[3; 512]);
    let minor = delay_device(&core, "0 8192 delay /dev/vda 0 0 /dev/vdb 0 10");
    let r = platform.run_io(&core, minor, Op::Read, 0, 512, None);
    assert_eq!((r.result(), r.data()), (Some(Ok(())), vec![3; 512]), "reads: delay 0");
    let (w, req) = platform.request(minor, Op::Write, 0, 512, Some(&[4; 512]));
    core.submit(minor, w.clone(), req);
    assert_eq!(w.result(), None, "writes: 10 ms");
    platform.advance(10 * MS);
    assert_eq!(w.result(), Some(Ok(())));
    assert_eq!(&platform.disk(VDB)[..512], &[4; 512][..]);
}

#[test]
fn errors_of_the_lower_device_come_back_after_the_delay() {
    let (core, platform) = setup(DISK);
    let minor = delay_device(&core, "0 8192 delay /dev/vda 0 20");
    platform.add_fault(Fault::range(VDA, 0, 8, Errno::EIO));
    let (io, req) = platform.request(minor, Op::Read, 0, 512, None);
    core.submit(minor, io.clone(), req);
    platform.advance(19 * MS);
    assert_eq!(io.result(), None);
    platform.advance(MS);
    assert_eq!(io.result(), Some(Err(Errno::EIO)));
}

/// Submits a read, a write and a flush to a 1 s delay line; returns them, held.
fn three_held(core: &Core<MemPlatform>, platform: &MemPlatform, minor: u32) -> Vec<MemIo> {
    let mut ios = Vec::new();
    for (op, bytes) in [(Op::Read, 512), (Op::Write, 512), (Op::Flush, 0)] {
        let data = (op == Op::Write).then(|| vec![6u8; 512]);
        let (io, req) = platform.request(minor, op, 0, bytes, data.as_deref());
        core.submit(minor, io.clone(), req);
        ios.push(io);
    }
    platform.run();
    assert!(ios.iter().all(|io| io.result().is_none()));
    ios
}

#[test]
fn suspend_releases_held_requests_at_once_and_resume_delays_again() {
    let (core, platform) = setup(DISK);
    let minor = delay_device(&core, "0 8192 delay /dev/vda 0 1000 /dev/vdb 0 1000 /dev/vdb 0 1000");
    let t0 = platform.now();
    let ios = three_held(&core, &platform, minor);
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 1 1 1"]);
    // Without the release the suspend could not drain: the virtual clock does not move.
    assert_eq!(suspend(&core, "d", 0), Ok(()));
    assert_eq!(platform.now(), t0, "no time passed");
    assert!(ios.iter().all(|io| io.result() == Some(Ok(()))), "all released and completed");
    assert_eq!(&platform.disk(VDB)[..512], &[6; 512][..]);
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 0 0 0"]);

    // While suspended, new requests wait in the core; after resume they are delayed again.
    let (late, req) = platform.request(minor, Op::Read, 0, 512, None);
    core.submit(minor, late.clone(), req);
    assert_eq!((late.result(), platform.deferred(minor)), (None, 1));
    assert_eq!(resume(&core, "d"), Ok(()));
    assert_eq!(late.result(), None, "delayed after resume");
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 1 0 0"]);
    platform.advance(1000 * MS);
    assert_eq!(late.result(), Some(Ok(())));
}

#[test]
fn a_noflush_suspend_releases_them_too_as_linux_delay_does() {
    let (core, platform) = setup(DISK);
    let minor = delay_device(&core, "0 8192 delay /dev/vda 0 1000");
    let ios = three_held(&core, &platform, minor);
    assert_eq!(suspend(&core, "d", NOFLUSH), Ok(()));
    assert!(ios.iter().all(|io| io.result() == Some(Ok(()))));
    assert_eq!(resume(&core, "d"), Ok(()));
}

#[test]
fn a_table_swap_and_a_remove_release_held_requests() {
    let (core, platform) = setup(DISK);
    let minor = delay_device(&core, "0 8192 delay /dev/vda 0 1000");
    let ios = three_held(&core, &platform, minor);
    assert_eq!(reload(&core, "d", &["0 8192 delay /dev/vdb 0 1000"]).result, Ok(()));
    assert_eq!(resume(&core, "d"), Ok(()), "resume drains the old table first");
    assert!(ios.iter().all(|io| io.result() == Some(Ok(()))));
    assert_eq!(&platform.disk(VDA)[..512], &[6; 512][..], "through the old table");
    assert_eq!(platform.opens(VDA), 0, "the old table is gone");
    assert_eq!(table(&core, "d"), vec!["0 8192 delay 254:16 0 1000"]);

    let ios = three_held(&core, &platform, minor);
    assert_eq!(remove(&core, "d"), Ok(()));
    assert!(ios.iter().all(|io| io.result() == Some(Ok(()))));
    assert_eq!(&platform.disk(VDB)[..512], &[6; 512][..]);
    assert_eq!(platform.opens(VDB), 0);
    // The timers still pending find nothing and keep nothing alive.
    platform.advance(1000 * MS);
    assert_eq!(platform.opens(VDB), 0);
}

#[test]
fn many_held_requests_beyond_the_reserve() {
    let (core, platform) = setup(DISK);
    let minor = delay_device(&core, "0 8192 delay /dev/vda 0 10");
    let ios: Vec<_> = (0..500u64)
        .map(|i| {
            let (io, req) = platform.request(minor, Op::Read, i % 8192, 512, None);
            core.submit(minor, io.clone(), req);
            io
        })
        .collect();
    assert_eq!(status(&core, "d"), vec!["0 8192 delay 500 0 0"]);
    platform.advance(10 * MS);
    assert!(ios.iter().all(|io| io.result() == Some(Ok(()))));
}
