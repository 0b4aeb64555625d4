//! The flakey target against Linux: its constructor forms, feature lists and refusals with Linux
//! 6.1's TABLE lines and messages (and 6.12's for the features 6.1 lacks), and each feature's
//! effect on the bytes and errors of requests in up and down phases, driven by the in-memory
//! platform's virtual clock.

mod dmtest;

use dmcore::platform::mem::{MemIo, MemPlatform};
use dmcore::table::{Table, TableLine};
use dmcore::target::StatusKind;
use dmcore::{Core, Errno, Op};
use dmtest::cases::*;
use dmtest::*;

const DISK: u64 = 16384;

/// The feature words Linux 6.1 refuses and this port accepts (Linux 6.12's).
fn uses_newer_feature(line: &str) -> bool {
    ["error_reads", "random_read_corrupt", "random_write_corrupt"].iter().any(|w| line.contains(w))
}

#[test]
fn every_table_of_the_golden_transcript_prints_as_in_linux() {
    let (core, _) = setup(DISK);
    let cases = golden_cases("05-flakey.txt");
    assert_eq!(cases.len(), 12, "{cases:?}");
    let mut newer = 0;
    for case in &cases {
        if uses_newer_feature(&case.line) {
            // Linux 6.1 refuses the 6.12 features; this port accepts them.
            let err = case.error.as_ref().map(|(m, e)| (m.as_str(), e.as_str()));
            assert_eq!(err, Some(("flakey: Unrecognised flakey feature requested", "EINVAL")), "{}", case.line);
            create(&core, &case.name, &[&case.line]).unwrap_or_else(|e| panic!("{}: {e:?}", case.line));
            assert_eq!(remove(&core, &case.name), Ok(()));
            newer += 1;
        } else {
            check_golden_case(&core, case);
        }
    }
    assert_eq!(newer, 2);
}

#[test]
fn constructor_forms_print_linux_table_lines_and_reload_to_themselves() {
    let (core, _) = setup(DISK);
    for (i, &(line, want)) in FLAKEY_ACCEPTED_6_1.iter().chain(FLAKEY_ACCEPTED_NEWER).enumerate() {
        let name = format!("f{i}");
        create(&core, &name, &[line]).unwrap_or_else(|e| panic!("{line}: {e:?}"));
        assert_eq!(table(&core, &name), vec![want], "{line}");
        assert_eq!(status(&core, &name), vec!["0 8192 flakey "], "{line}");
        assert_eq!(reload(&core, &name, &[want]).result, Ok(()), "{want}");
        assert_eq!(resume(&core, &name), Ok(()));
        assert_eq!(table(&core, &name), vec![want], "{line} reloaded");
        assert_eq!(remove(&core, &name), Ok(()));
    }
}

#[test]
fn refused_argument_lists_carry_linux_messages() {
    let (core, platform) = setup(DISK);
    for (i, &(line, message)) in FLAKEY_REFUSED.iter().enumerate() {
        let name = format!("bad{i}");
        let (errno, detail) = create(&core, &name, &[line]).err().unwrap_or_else(|| panic!("{line} accepted"));
        assert_eq!(detail, format!("line 0: flakey: {message}"), "{line}");
        assert_eq!(errno, if detail.contains("lookup") { Errno::ENOENT } else { Errno::EINVAL }, "{line}");
    }
    assert_eq!(platform.opens(VDA), 0);
}

#[test]
fn info_and_ima_are_empty_as_in_linux() {
    let (core, platform) = setup(DISK);
    let line =
        TableLine { start: 0, len: 8192, target_type: "flakey".into(), params: "/dev/vda 0 1 1 1 drop_writes".into() };
    let t = Table::build(&platform, core.targets(), 1, &[line], false).unwrap();
    assert_eq!(t.status(StatusKind::Ima)[0].3, "");
    assert_eq!(t.status(StatusKind::Info)[0].3, "");
    assert_eq!(t.status(StatusKind::Table)[0].3, "254:0 0 1 1 1 drop_writes ");
}

// ---- behaviour -------------------------------------------------------------------------------

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect()
}

/// A flakey device over vda (filled with a pattern), created at the current virtual time.
fn flakey(core: &Core<MemPlatform>, platform: &MemPlatform, params: &str) -> u32 {
    platform.fill_disk(VDA, 0, &pattern(64 * 512, 1));
    create(core, "f", &[&format!("0 8192 flakey /dev/vda 0 {params}")]).unwrap()
}

fn read(core: &Core<MemPlatform>, platform: &MemPlatform, minor: u32, sector: u64, bytes: u64) -> MemIo {
    platform.run_io(core, minor, Op::Read, sector, bytes, None)
}

fn write(core: &Core<MemPlatform>, platform: &MemPlatform, minor: u32, sector: u64, data: &[u8]) -> MemIo {
    platform.run_io(core, minor, Op::Write, sector, data.len() as u64, Some(data))
}

fn write_fua(core: &Core<MemPlatform>, platform: &MemPlatform, minor: u32, sector: u64, data: &[u8]) -> MemIo {
    let (io, mut req) = platform.request(minor, Op::Write, sector, data.len() as u64, Some(data));
    req.fua = true;
    core.submit(minor, io.clone(), req);
    platform.run();
    io
}

fn disk_at(platform: &MemPlatform, sector: u64, bytes: usize) -> Vec<u8> {
    let start = (sector * 512) as usize;
    platform.disk(VDA)[start..start + bytes].to_vec()
}

#[test]
fn up_and_down_phases_follow_the_clock_from_table_load() {
    let (core, platform) = setup(DISK);
    platform.advance(5 * SEC + 500 * MS); // the table is loaded at 5.5 s
    let minor = flakey(&core, &platform, "2 1");
    let up = |what: &str| {
        let r = read(&core, &platform, minor, 0, 512);
        assert_eq!((r.result(), r.data()), (Some(Ok(())), pattern(512, 1)), "{what}: read");
        let w = write(&core, &platform, minor, 8, &[0xaa; 512]);
        assert_eq!(w.result(), Some(Ok(())), "{what}: write");
        let f = platform.run_io(&core, minor, Op::Flush, 0, 0, None);
        assert_eq!(f.result(), Some(Ok(())), "{what}: flush");
    };
    let down = |what: &str| {
        assert_eq!(read(&core, &platform, minor, 0, 512).result(), Some(Err(Errno::EIO)), "{what}: read");
        assert_eq!(write(&core, &platform, minor, 8, &[0xbb; 512]).result(), Some(Err(Errno::EIO)), "{what}: write");
        let f = platform.run_io(&core, minor, Op::Flush, 0, 0, None);
        assert_eq!(f.result(), Some(Err(Errno::EIO)), "{what}: a flush is a write");
        let d = platform.run_io(&core, minor, Op::Discard, 16, 512, None);
        assert_eq!(d.result(), Some(Err(Errno::EIO)), "{what}: a discard is a write");
        assert_eq!(disk_at(&platform, 8, 512), vec![0xaa; 512], "{what}: nothing written");
    };
    up("0 s");
    platform.advance(2 * SEC - 1);
    up("2 s - 1 ns");
    platform.advance(1);
    down("2 s");
    platform.advance(SEC - 1);
    down("3 s - 1 ns");
    platform.advance(1);
    up("3 s: the next period");
    platform.advance(2 * SEC);
    down("5 s");
    // A reload restarts the clock: the new table is up for its first 2 s.
    assert_eq!(reload(&core, "f", &["0 8192 flakey /dev/vda 0 2 1"]).result, Ok(()));
    assert_eq!(resume(&core, "f"), Ok(()));
    up("reloaded");
}

#[test]
fn drop_writes_completes_writes_without_writing_and_reads_pass() {
    let (core, platform) = setup(DISK);
    let minor = flakey(&core, &platform, "0 10 1 drop_writes");
    let w = write(&core, &platform, minor, 0, &[0x22; 512]);
    assert_eq!(w.result(), Some(Ok(())));
    assert_eq!(disk_at(&platform, 0, 512), pattern(512, 1), "dropped");
    let r = read(&core, &platform, minor, 0, 4096);
    assert_eq!((r.result(), r.data()), (Some(Ok(())), pattern(4096, 1)));
    assert_eq!(platform.run_io(&core, minor, Op::Flush, 0, 0, None).result(), Some(Ok(())));
    assert_eq!(platform.run_io(&core, minor, Op::Discard, 0, 512, None).result(), Some(Ok(())));
    assert_eq!(disk_at(&platform, 0, 512), pattern(512, 1), "the discard was dropped too");
}

#[test]
fn drop_writes_while_up_writes() {
    let (core, platform) = setup(DISK);
    let minor = flakey(&core, &platform, "10 10 1 drop_writes");
    assert_eq!(write(&core, &platform, minor, 0, &[0x22; 512]).result(), Some(Ok(())));
    assert_eq!(disk_at(&platform, 0, 512), vec![0x22; 512]);
    platform.advance(10 * SEC);
    assert_eq!(write(&core, &platform, minor, 0, &[0x33; 512]).result(), Some(Ok(())));
    assert_eq!(disk_at(&platform, 0, 512), vec![0x22; 512], "down: dropped");
}

#[test]
fn error_writes_fails_writes_and_reads_pass() {
    let (core, platform) = setup(DISK);
    let minor = flakey(&core, &platform, "0 10 1 error_writes");
    assert_eq!(write(&core, &platform, minor, 0, &[0x33; 512]).result(), Some(Err(Errno::EIO)));
    assert_eq!(disk_at(&platform, 0, 512), pattern(512, 1));
    let r = read(&core, &platform, minor, 0, 512);
    assert_eq!((r.result(), r.data()), (Some(Ok(())), pattern(512, 1)));
}

#[test]
fn error_reads_fails_reads_and_writes_pass() {
    let (core, platform) = setup(DISK);
    let minor = flakey(&core, &platform, "0 10 1 error_reads");
    assert_eq!(read(&core, &platform, minor, 0, 512).result(), Some(Err(Errno::EIO)));
    assert_eq!(write(&core, &platform, minor, 0, &[0x44; 512]).result(), Some(Ok(())));
    assert_eq!(disk_at(&platform, 0, 512), vec![0x44; 512]);
}

#[test]
fn corrupt_bio_byte_on_reads_changes_the_returned_byte_only_while_down() {
    let (core, platform) = setup(DISK);
    platform.advance(SEC / 2);
    let minor = flakey(&core, &platform, "1 1 5 corrupt_bio_byte 32 r 1 0");
    let r = read(&core, &platform, minor, 0, 4096);
    assert_eq!((r.result(), r.data()), (Some(Ok(())), pattern(4096, 1)), "up: untouched");
    platform.advance(SEC);
    let r = read(&core, &platform, minor, 0, 4096);
    let mut want = pattern(4096, 1);
    want[31] = 1;
    // Linux 6.1 showed no effect here (its end_io walks an exhausted iterator); 6.12 and this
    // port corrupt the data the caller gets.
    assert_eq!((r.result(), r.data()), (Some(Ok(())), want), "down: byte 32 (1-based) is 1");
    assert_eq!(disk_at(&platform, 0, 4096), pattern(4096, 1), "the disk is unchanged");
    // Writes are not touched by a read corruption, and pass while down.
    assert_eq!(write(&core, &platform, minor, 8, &[0x66; 512]).result(), Some(Ok(())));
    assert_eq!(disk_at(&platform, 8, 512), vec![0x66; 512]);
    // A read shorter than Nth bytes is returned whole.
    let short = flakey_short(&core, &platform);
    assert_eq!(short, pattern(512, 1));
}

fn flakey_short(core: &Core<MemPlatform>, platform: &MemPlatform) -> Vec<u8> {
    assert_eq!(remove(core, "f"), Ok(()));
    let minor = flakey(core, platform, "0 1 5 corrupt_bio_byte 513 r 1 0");
    let r = read(core, platform, minor, 0, 512);
    assert_eq!(r.result(), Some(Ok(())));
    r.data()
}

#[test]
fn corrupt_bio_byte_on_writes_corrupts_the_disk_not_the_callers_buffer() {
    let (core, platform) = setup(DISK);
    let minor = flakey(&core, &platform, "0 10 5 corrupt_bio_byte 1 w 0 0");
    let w = write(&core, &platform, minor, 0, &[0x55; 512]);
    assert_eq!(w.result(), Some(Ok(())));
    let mut want = vec![0x55; 512];
    want[0] = 0;
    assert_eq!(disk_at(&platform, 0, 512), want, "as Linux: 00 55 55 55");
    assert_eq!(w.data(), vec![0x55; 512], "the caller's buffer is untouched (as 6.12 clones)");
    // Reads pass while down.
    let r = read(&core, &platform, minor, 8, 512);
    assert_eq!((r.result(), r.data()), (Some(Ok(())), disk_at(&platform, 8, 512)));
    // A multi-sector write: only byte 1 of the whole request.
    let data = pattern(8 * 512, 9);
    assert_eq!(write(&core, &platform, minor, 16, &data).result(), Some(Ok(())));
    let mut want = data.clone();
    want[0] = 0;
    assert_eq!(disk_at(&platform, 16, 8 * 512), want);
}

#[test]
fn corrupt_bio_byte_flags_select_requests_by_linux_bio_flags() {
    let (core, platform) = setup(DISK);
    // 131072 is REQ_FUA: as in Linux (dd oflag=direct,sync in the oracle VM), only FUA writes
    // are corrupted.
    let minor = flakey(&core, &platform, "0 10 5 corrupt_bio_byte 2 w 0 131072");
    assert_eq!(write(&core, &platform, minor, 0, &[0x55; 512]).result(), Some(Ok(())));
    assert_eq!(disk_at(&platform, 0, 4), vec![0x55, 0x55, 0x55, 0x55]);
    assert_eq!(write_fua(&core, &platform, minor, 8, &[0x55; 512]).result(), Some(Ok(())));
    assert_eq!(disk_at(&platform, 8, 4), vec![0x55, 0x00, 0x55, 0x55]);
    assert_eq!(remove(&core, "f"), Ok(()));
    // 2048 is REQ_SYNC, which Linux sets on direct writes but this core's requests never carry:
    // nothing matches.
    let minor = flakey(&core, &platform, "0 10 5 corrupt_bio_byte 3 w 0 2048");
    assert_eq!(write_fua(&core, &platform, minor, 16, &[0x55; 512]).result(), Some(Ok(())));
    assert_eq!(disk_at(&platform, 16, 4), vec![0x55; 4]);
    assert_eq!(remove(&core, "f"), Ok(()));
    // A mask with a bit no read has: reads pass untouched (Linux: the same).
    let minor = flakey(&core, &platform, "0 10 5 corrupt_bio_byte 1 r 0 4294967295");
    let r = read(&core, &platform, minor, 0, 512);
    assert_eq!((r.result(), r.data()), (Some(Ok(())), pattern(512, 1)));
    assert_eq!(dmcore::target::flakey::linux_opf(Op::Write, true), 131073);
    assert_eq!(dmcore::target::flakey::linux_opf(Op::Flush, false), (1 << 18) | 1);
}

/// How many bytes differ.
fn diff(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).filter(|(x, y)| x != y).count()
}

#[test]
fn random_read_corrupt_changes_at_most_one_byte_with_its_probability() {
    let (core, platform) = setup(DISK);
    let minor = flakey(&core, &platform, "0 10 2 random_read_corrupt 1000000000");
    let mut changed = 0;
    for i in 0..50u64 {
        let r = read(&core, &platform, minor, i % 8, 512);
        assert_eq!(r.result(), Some(Ok(())));
        let d = diff(&r.data(), &disk_at(&platform, i % 8, 512));
        assert!(d <= 1, "one byte at most: {d}");
        changed += d;
    }
    assert!(changed >= 45, "p = 1: (almost) every read, unless the random value equals the old: {changed}");
    assert_eq!(disk_at(&platform, 0, 4096), pattern(4096, 1));
    assert_eq!(write(&core, &platform, minor, 0, &[7; 512]).result(), Some(Ok(())), "writes pass");
    assert_eq!(remove(&core, "f"), Ok(()));

    let minor = flakey(&core, &platform, "0 10 2 random_read_corrupt 250000000");
    let changed = (0..400)
        .filter(|_| {
            let r = read(&core, &platform, minor, 0, 512);
            diff(&r.data(), &pattern(512, 1)) > 0
        })
        .count();
    assert!((60..140).contains(&changed), "p = 1/4 of 400 reads: {changed}");
}

#[test]
fn random_write_corrupt_changes_the_disk_not_the_callers_buffer() {
    let (core, platform) = setup(DISK);
    let minor = flakey(&core, &platform, "0 10 2 random_write_corrupt 1000000000");
    let mut changed = 0;
    for i in 0..20u64 {
        let data = pattern(1024, i as u8);
        let w = write(&core, &platform, minor, 2 * i, &data);
        assert_eq!(w.result(), Some(Ok(())));
        assert_eq!(w.data(), data, "caller's buffer untouched");
        let d = diff(&disk_at(&platform, 2 * i, 1024), &data);
        assert!(d <= 1);
        changed += d;
    }
    assert!(changed >= 18, "{changed}");
    let r = read(&core, &platform, minor, 100, 512);
    assert_eq!((r.result(), r.data()), (Some(Ok(())), disk_at(&platform, 100, 512)), "reads pass");
}

#[test]
fn random_corruption_is_reproducible_on_the_virtual_clock() {
    let run = || {
        let (core, platform) = setup(DISK);
        let minor = flakey(&core, &platform, "0 10 2 random_read_corrupt 500000000");
        (0..20).map(|_| read(&core, &platform, minor, 0, 512).data()).collect::<Vec<_>>()
    };
    assert_eq!(run(), run());
}

#[test]
fn only_zero_probabilities_mean_no_feature_so_all_io_fails_while_down() {
    let (core, platform) = setup(DISK);
    let minor = flakey(&core, &platform, "0 10 2 random_read_corrupt 0");
    assert_eq!(read(&core, &platform, minor, 0, 512).result(), Some(Err(Errno::EIO)));
    assert_eq!(write(&core, &platform, minor, 0, &[1; 512]).result(), Some(Err(Errno::EIO)));
}

#[test]
fn several_features_together() {
    let (core, platform) = setup(DISK);
    // As golden `fm`: drop_writes + corrupt reads (flags 32: no request of this core matches).
    let minor = flakey(&core, &platform, "0 10 6 drop_writes corrupt_bio_byte 224 r 0 32");
    assert_eq!(write(&core, &platform, minor, 0, &[9; 512]).result(), Some(Ok(())));
    assert_eq!(disk_at(&platform, 0, 512), pattern(512, 1));
    let r = read(&core, &platform, minor, 0, 512);
    assert_eq!(r.data(), pattern(512, 1));
    assert_eq!(remove(&core, "f"), Ok(()));
    // error_writes + corrupt reads (flags 0: every read).
    let minor = flakey(&core, &platform, "0 10 6 error_writes corrupt_bio_byte 2 r 7 0");
    assert_eq!(write(&core, &platform, minor, 0, &[9; 512]).result(), Some(Err(Errno::EIO)));
    let r = read(&core, &platform, minor, 0, 512);
    let mut want = pattern(512, 1);
    want[1] = 7;
    assert_eq!(r.data(), want);
    assert_eq!(remove(&core, "f"), Ok(()));
    // error_reads + corrupt writes.
    let minor = flakey(&core, &platform, "0 10 6 error_reads corrupt_bio_byte 3 w 8 0");
    assert_eq!(read(&core, &platform, minor, 0, 512).result(), Some(Err(Errno::EIO)));
    assert_eq!(write(&core, &platform, minor, 0, &[9; 512]).result(), Some(Ok(())));
    assert_eq!(disk_at(&platform, 0, 4), vec![9, 9, 8, 9]);
}

#[test]
fn lower_device_errors_pass_through_the_corrupting_worker() {
    let (core, platform) = setup(DISK);
    let minor = flakey(&core, &platform, "0 10 5 corrupt_bio_byte 1 r 0 0");
    platform.add_fault(dmcore::platform::mem::Fault::range(VDA, 0, 8, Errno::ENXIO));
    assert_eq!(read(&core, &platform, minor, 0, 512).result(), Some(Err(Errno::ENXIO)));
    assert_eq!(remove(&core, "f"), Ok(()));
    let minor = flakey(&core, &platform, "0 10 5 corrupt_bio_byte 1 w 0 0");
    assert_eq!(write(&core, &platform, minor, 0, &[1; 512]).result(), Some(Err(Errno::ENXIO)));
}
