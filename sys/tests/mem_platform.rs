//! The in-memory platform's own promises, which later targets' crash tests rely on: faults hit
//! exactly the requests they name, a crash stops the machine after the n-th write, and a crash
//! image holds the flushed state plus a chosen subset of unflushed writes.

mod common;

use common::*;
use dmcore::platform::mem::{CrashMode, Fault};
use dmcore::{Errno, Op};

fn linear_device(core: &dmcore::Core<dmcore::platform::mem::MemPlatform>) -> u32 {
    make_device(core, "d", &[(0, 1024, "linear", "/dev/dmtl0 0")])
}

#[test]
fn nth_and_range_faults_hit_exactly_their_requests() {
    let (core, platform) = setup();
    let minor = linear_device(&core);
    platform.add_fault(Fault::nth(3, Errno::EIO));
    let results: Vec<_> = (0..5).map(|i| platform.run_io(&core, minor, Op::Read, i * 8, 512, None).result()).collect();
    assert_eq!(results, vec![Some(Ok(())), Some(Ok(())), Some(Err(Errno::EIO)), Some(Ok(())), Some(Ok(()))]);
    platform.add_fault(Fault::range(lower(0), 100, 10, Errno::ENOSPC).only(&[Op::Write]));
    assert_eq!(platform.run_io(&core, minor, Op::Write, 99, 512, Some(&[1; 512])).result(), Some(Ok(())));
    assert_eq!(platform.run_io(&core, minor, Op::Write, 99, 1024, Some(&[1; 1024])).result(), Some(Err(Errno::ENOSPC)));
    assert_eq!(platform.run_io(&core, minor, Op::Read, 100, 512, None).result(), Some(Ok(())), "reads unaffected");
    assert_eq!(platform.run_io(&core, minor, Op::Write, 110, 512, Some(&[1; 512])).result(), Some(Ok(())));
    platform.clear_faults();
    assert_eq!(platform.run_io(&core, minor, Op::Write, 100, 512, Some(&[1; 512])).result(), Some(Ok(())));
}

#[test]
fn a_crash_stops_the_machine_after_the_nth_write() {
    let (core, platform) = setup();
    let minor = linear_device(&core);
    platform.crash_after_writes(2);
    let w = |sector: u64, byte: u8| platform.run_io(&core, minor, Op::Write, sector, 512, Some(&[byte; 512])).result();
    assert_eq!(w(0, 1), Some(Ok(())));
    assert_eq!(w(1, 2), Some(Ok(())));
    assert!(!platform.crashed());
    assert_eq!(w(2, 3), Some(Err(Errno::EIO)));
    assert!(platform.crashed());
    assert_eq!(
        platform.run_io(&core, minor, Op::Read, 0, 512, None).result(),
        Some(Err(Errno::EIO)),
        "nothing runs after"
    );
    assert!(platform.disk(lower(0))[1024..1536].iter().all(|&b| b == 0), "the third write never landed");
}

#[test]
fn crash_images_keep_flushed_and_fua_writes_and_a_subset_of_the_rest() {
    let (core, platform) = setup();
    let minor = linear_device(&core);
    let write = |sector: u64, byte: u8, fua: bool| {
        let (io, mut req) = platform.request(minor, Op::Write, sector, 512, Some(&[byte; 512]));
        req.fua = fua;
        core.submit(minor, io.clone(), req);
        platform.run();
        assert_eq!(io.result(), Some(Ok(())));
    };
    write(0, 1, false);
    assert_eq!(platform.run_io(&core, minor, Op::Flush, 0, 0, None).result(), Some(Ok(())));
    write(0, 2, false); // unflushed overwrite of a flushed sector
    write(1, 3, true); // durable at once
    for s in 2..10 {
        write(s, 10 + s as u8, false);
    }
    let sector = |image: &[u8], s: usize| image[s * 512];
    let dropped = platform.crash_image(lower(0), CrashMode::DropUnflushed);
    assert_eq!((sector(&dropped, 0), sector(&dropped, 1), sector(&dropped, 2)), (1, 3, 0));
    let kept = platform.crash_image(lower(0), CrashMode::KeepAll);
    assert_eq!(kept, platform.disk(lower(0)));
    // A reordered crash keeps some unflushed writes and loses others, and is repeatable.
    let mut saw_kept = false;
    let mut saw_lost = false;
    for seed in 0..16 {
        let image = platform.crash_image(lower(0), CrashMode::Reorder(seed));
        assert_eq!(image, platform.crash_image(lower(0), CrashMode::Reorder(seed)));
        assert_eq!(sector(&image, 1), 3, "FUA write always survives");
        for s in 2..10 {
            let b = sector(&image, s);
            assert!(b == 0 || b == 10 + s as u8);
            saw_kept |= b != 0;
            saw_lost |= b == 0;
        }
    }
    assert!(saw_kept && saw_lost);
    // Rebooting makes the crash image the disk.
    platform.reboot_after_crash(CrashMode::DropUnflushed);
    assert_eq!(platform.disk(lower(0)), dropped);
}
