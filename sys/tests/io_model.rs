//! The data path on the in-memory platform: splitting, remapping, aggregation of child results,
//! flush fan-out, suspension and draining, deferral, and target workers.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;
use dmcore::io::{Mapper, QueuedIo, Segment};
use dmcore::platform::mem::{Fault, MemPlatform};
use dmcore::platform::{Platform, Work};
use dmcore::plist::{write_dict, Dict, Number, Value};
use dmcore::target::{BuildContext, StatusKind, Target, TargetError, TargetType};
use dmcore::{DevT, Errno, Op};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn a_request_spanning_lines_is_split_and_lands_on_each_device() {
    let (core, platform) = setup();
    let minor = make_device(
        &core,
        "d",
        &[(0, 8, "linear", "/dev/dmtl0 100"), (8, 8, "linear", "/dev/dmtl1 200"), (16, 8, "linear", "/dev/dmtl2 300")],
    );
    platform.hold(true);
    let data = pattern(24 * 512, 1);
    let (io, req) = platform.request(minor, Op::Write, 4, 16 * 512, Some(&data[..16 * 512]));
    core.submit(minor, io.clone(), req);
    let children: Vec<(DevT, u64, u64, usize)> =
        platform.queued_children().iter().map(|c| (c.dev, c.sector, c.sectors, c.buf_offset)).collect();
    assert_eq!(children, vec![(lower(0), 104, 4, 0), (lower(1), 200, 8, 2048), (lower(2), 300, 4, 6144)]);
    assert_eq!(io.result(), None, "not complete before its children");
    platform.run();
    assert_eq!(io.result(), Some(Ok(())));
    assert_eq!(&platform.disk(lower(0))[104 * 512..108 * 512], &data[..2048]);
    assert_eq!(&platform.disk(lower(1))[200 * 512..208 * 512], &data[2048..6144]);
    assert_eq!(&platform.disk(lower(2))[300 * 512..304 * 512], &data[6144..8192]);
    platform.hold(false);
    let back = platform.run_io(&core, minor, Op::Read, 4, 16 * 512, None);
    assert_eq!(back.data(), &data[..16 * 512]);
}

#[test]
fn striped_requests_split_at_chunk_boundaries() {
    let (core, platform) = setup();
    let minor = make_device(&core, "s", &[(0, 96, "striped", "3 8 /dev/dmtl0 0 /dev/dmtl1 16 /dev/dmtl2 32")]);
    platform.hold(true);
    let (io, req) = platform.request(minor, Op::Read, 6, 20 * 512, None);
    core.submit(minor, io.clone(), req);
    let children: Vec<(DevT, u64, u64, usize, u32)> =
        platform.queued_children().iter().map(|c| (c.dev, c.sector, c.sectors, c.buf_offset, c.tag.aux)).collect();
    // Sectors 6..26: chunk 0 (stripe 0) 6..8, chunk 1 (stripe 1) 8..16, chunk 2 (stripe 2) 16..24,
    // chunk 3 (stripe 0, second row) 24..26.
    assert_eq!(
        children,
        vec![(lower(0), 6, 2, 0, 0), (lower(1), 16, 8, 1024, 1), (lower(2), 32, 8, 5120, 2), (lower(0), 8, 2, 9216, 0)]
    );
    platform.run();
    assert_eq!(io.result(), Some(Ok(())));
}

#[test]
fn the_first_error_wins() {
    let (core, platform) = setup();
    let minor = make_device(&core, "d", &[(0, 8, "linear", "/dev/dmtl0 0"), (8, 8, "linear", "/dev/dmtl1 0")]);
    platform.add_fault(Fault::range(lower(0), 0, 8, Errno::ENOSPC));
    platform.add_fault(Fault::range(lower(1), 0, 8, Errno::EIO));
    platform.hold(true);
    for (order, want) in [([0usize, 1], Errno::ENOSPC), ([1, 0], Errno::EIO)] {
        let (io, req) = platform.request(minor, Op::Read, 0, 16 * 512, None);
        core.submit(minor, io.clone(), req);
        assert_eq!(platform.queued(), 2);
        if order[0] == 1 {
            // Run the second child first: take it out of order by running the queue reversed.
            platform.run_shuffled(reverse_seed());
        } else {
            platform.run();
        }
        assert_eq!(io.result(), Some(Err(want)), "{order:?}");
    }
}

/// A seed under which run_shuffled runs a two-element queue back to front.
fn reverse_seed() -> u64 {
    (1..1000)
        .find(|&seed| {
            let (core, platform) = setup();
            let minor = make_device(&core, "p", &[(0, 8, "linear", "/dev/dmtl0 0"), (8, 8, "linear", "/dev/dmtl1 0")]);
            platform.add_fault(Fault::range(lower(1), 0, 8, Errno::EIO));
            platform.add_fault(Fault::range(lower(0), 0, 8, Errno::ENOSPC));
            platform.hold(true);
            let (io, req) = platform.request(minor, Op::Read, 0, 16 * 512, None);
            core.submit(minor, io.clone(), req);
            platform.run_shuffled(seed);
            io.result() == Some(Err(Errno::EIO))
        })
        .unwrap()
}

#[test]
fn flush_goes_to_every_lower_device_once_per_line() {
    let (core, platform) = setup();
    let minor = make_device(
        &core,
        "d",
        &[
            (0, 8, "linear", "/dev/dmtl0 0"),
            (8, 16, "striped", "2 8 /dev/dmtl1 0 /dev/dmtl2 0"),
            (24, 8, "zero", ""),
            (32, 8, "error", ""),
        ],
    );
    platform.hold(true);
    let (io, req) = platform.request(minor, Op::Flush, 0, 0, None);
    core.submit(minor, io.clone(), req);
    let devs: Vec<(DevT, Op)> = platform.queued_children().iter().map(|c| (c.dev, c.op)).collect();
    assert_eq!(devs, vec![(lower(0), Op::Flush), (lower(1), Op::Flush), (lower(2), Op::Flush)]);
    platform.run();
    assert_eq!(io.result(), Some(Ok(())), "zero and error accept flushes");
}

#[test]
fn zero_error_and_bounds() {
    let (core, platform) = setup();
    let minor = make_device(&core, "d", &[(0, 8, "zero", ""), (8, 8, "error", "")]);
    let io = platform.run_io(&core, minor, Op::Read, 0, 4096, Some(&[0xff; 4096]));
    assert_eq!((io.result(), io.data()), (Some(Ok(())), vec![0; 4096]));
    assert_eq!(platform.run_io(&core, minor, Op::Write, 0, 4096, Some(&[1; 4096])).result(), Some(Ok(())));
    assert_eq!(platform.run_io(&core, minor, Op::Discard, 0, 4096, None).result(), Some(Err(Errno::EOPNOTSUPP)));
    assert_eq!(platform.run_io(&core, minor, Op::Read, 8, 512, None).result(), Some(Err(Errno::EIO)));
    assert_eq!(platform.run_io(&core, minor, Op::Discard, 8, 512, None).result(), Some(Err(Errno::EIO)));
    // A request crossing from zero into error fails as a whole.
    assert_eq!(platform.run_io(&core, minor, Op::Read, 4, 8 * 512, None).result(), Some(Err(Errno::EIO)));
    // Past the end, misaligned, zero-length, unknown minor, device without a table.
    assert_eq!(platform.run_io(&core, minor, Op::Read, 15, 1024, None).result(), Some(Err(Errno::EIO)));
    assert_eq!(platform.run_io(&core, minor, Op::Read, u64::MAX, 512, None).result(), Some(Err(Errno::EIO)));
    assert_eq!(platform.run_io(&core, minor, Op::Read, 0, 100, None).result(), Some(Err(Errno::EINVAL)));
    assert_eq!(platform.run_io(&core, minor, Op::Read, 0, 0, None).result(), Some(Ok(())));
    assert_eq!(platform.run_io(&core, 99, Op::Read, 0, 512, None).result(), Some(Err(Errno::ENXIO)));
    command(&core, "create", "empty", &[]).unwrap();
    let empty = core.minor_of("empty").unwrap();
    assert_eq!(platform.run_io(&core, empty, Op::Read, 0, 512, None).result(), Some(Err(Errno::EIO)));
}

#[test]
fn striped_discard_covers_each_stripe_contiguously() {
    let (core, platform) = setup();
    let minor = make_device(&core, "s", &[(0, 96, "striped", "3 8 /dev/dmtl0 0 /dev/dmtl1 16 /dev/dmtl2 32")]);
    for i in 0..3 {
        platform.fill_disk(lower(i), 0, &vec![0xee; 64 * 512]);
    }
    platform.hold(true);
    let (io, req) = platform.request(minor, Op::Discard, 5, 30 * 512, None);
    core.submit(minor, io.clone(), req);
    let children: Vec<(DevT, u64, u64)> =
        platform.queued_children().iter().map(|c| (c.dev, c.sector, c.sectors)).collect();
    // Sectors 5..35: stripe 0 gets 5..8 and 24..32 (device 5..16), stripe 1 gets 8..16 and 32..35
    // (device 0..11 + 16), stripe 2 gets 16..24 (device 0..8 + 32).
    assert_eq!(children, vec![(lower(0), 5, 11), (lower(1), 16, 11), (lower(2), 32, 8)]);
    platform.run();
    assert_eq!(io.result(), Some(Ok(())));
    // Check against a per-sector model: exactly the covered sectors were zeroed.
    for s in 0..96u64 {
        let (chunk, within) = (s / 8, s % 8);
        let stripe = (chunk % 3) as u32;
        let dev_sector = [0, 16, 32][stripe as usize] + (chunk / 3) * 8 + within;
        let disk = platform.disk(lower(stripe));
        let byte = disk[(dev_sector * 512) as usize];
        assert_eq!(byte == 0, (5..35).contains(&s), "sector {s}");
    }
}

#[test]
fn striped_info_marks_a_failing_stripe() {
    let (core, platform) = setup();
    let minor = make_device(&core, "s", &[(0, 32, "striped", "2 8 /dev/dmtl0 0 /dev/dmtl1 0")]);
    platform.add_fault(Fault::range(lower(1), 0, 64, Errno::EIO));
    assert_eq!(platform.run_io(&core, minor, Op::Read, 0, 16 * 512, None).result(), Some(Err(Errno::EIO)));
    let mut d = Dict::new();
    d.set_string("command", b"status");
    d.set_string("name", b"s");
    d.insert("version", Value::Array(vec![Value::Number(Number::Unsigned(4))]));
    let r = send(&core, &write_dict(&d), ROOT).unwrap();
    assert!(String::from_utf8(r.bytes).unwrap().contains("<string>2 197:0 197:1 1 AD</string>"));
}

#[test]
fn suspend_waits_for_requests_in_flight_and_defers_new_ones() {
    let (core, platform) = setup();
    let minor = make_device(&core, "d", &[(0, 64, "linear", "/dev/dmtl0 0")]);
    platform.hold(true);
    let (io, req) = platform.request(minor, Op::Write, 0, 512, Some(&[7; 512]));
    core.submit(minor, io.clone(), req);
    let observed = Arc::new(Mutex::new(Vec::new()));
    let seen = observed.clone();
    let io_in_hook = io.clone();
    platform.set_wait_hook(Some(Box::new(move |p: &MemPlatform| {
        // Suspend is waiting: the write is still in flight; let it finish.
        seen.lock().unwrap().push(io_in_hook.result());
        p.run_one()
    })));
    assert_eq!(command(&core, "suspend", "d", &[]), Ok(()));
    assert_eq!(*observed.lock().unwrap(), vec![None], "suspend waited while the write was in flight");
    assert_eq!(io.result(), Some(Ok(())), "suspend returned after the write completed");
    assert!(platform.disk(lower(0))[..512].iter().all(|&b| b == 7));

    // While suspended, new requests wait.
    platform.hold(false);
    let (late, req) = platform.request(minor, Op::Read, 0, 512, None);
    core.submit(minor, late.clone(), req);
    assert_eq!((late.result(), platform.deferred(minor)), (None, 1));
    assert_eq!(command(&core, "resume", "d", &[]), Ok(()));
    assert_eq!(late.result(), Some(Ok(())));
    assert_eq!(late.data(), vec![7; 512]);
    platform.set_wait_hook(None);
}

#[test]
fn resume_drains_the_old_table_before_swapping_and_keeps_it_alive_until_then() {
    let (core, platform) = setup();
    let minor = make_device(&core, "d", &[(0, 64, "linear", "/dev/dmtl0 0")]);
    command(&core, "reload", "d", &[(0, 64, "linear", "/dev/dmtl1 0")]).unwrap();
    platform.hold(true);
    let (io, req) = platform.request(minor, Op::Write, 0, 512, Some(&[9; 512]));
    core.submit(minor, io.clone(), req);
    let opens_during = Arc::new(AtomicUsize::new(0));
    let seen = opens_during.clone();
    platform.set_wait_hook(Some(Box::new(move |p: &MemPlatform| {
        seen.store(p.opens(lower(0)) as usize, Ordering::SeqCst);
        p.run_one()
    })));
    assert_eq!(command(&core, "resume", "d", &[]), Ok(()));
    assert_eq!(opens_during.load(Ordering::SeqCst), 1, "old table alive while its request was in flight");
    assert_eq!(io.result(), Some(Ok(())));
    assert!(platform.disk(lower(0))[..512].iter().all(|&b| b == 9), "written through the old table");
    assert_eq!(platform.opens(lower(0)), 0, "old table gone after the swap");
    platform.set_wait_hook(None);
    platform.hold(false);
    let after = platform.run_io(&core, minor, Op::Write, 0, 512, Some(&[5; 512]));
    assert_eq!(after.result(), Some(Ok(())));
    assert!(platform.disk(lower(1))[..512].iter().all(|&b| b == 5), "new table live");
}

#[test]
fn remove_fails_deferred_requests() {
    let (core, platform) = setup();
    let minor = make_device(&core, "d", &[(0, 64, "zero", "")]);
    command(&core, "suspend", "d", &[]).unwrap();
    let (io, req) = platform.request(minor, Op::Read, 0, 512, None);
    core.submit(minor, io.clone(), req);
    assert_eq!(io.result(), None);
    command(&core, "remove", "d", &[]).unwrap();
    assert_eq!(io.result(), Some(Err(Errno::ENXIO)));
}

/// A target that hands every piece to a worker, which remaps reads to a disk and completes
/// writes itself: shows the queued path of the I/O model and a registered target type.
struct Deferring;

struct DeferringTarget {
    platform: MemPlatform,
    disk: <MemPlatform as Platform>::Disk,
    held: Mutex<Vec<QueuedIo<MemPlatform>>>,
    me: std::sync::Weak<DeferringTarget>,
}

impl TargetType<MemPlatform> for Deferring {
    fn name(&self) -> &str {
        "deferring"
    }
    fn version(&self) -> [u32; 3] {
        [0, 0, 1]
    }
    fn construct(
        &self,
        ctx: &BuildContext<'_, MemPlatform>,
        args: &[String],
    ) -> Result<Box<dyn Target<MemPlatform>>, TargetError> {
        let disk = ctx.open_area(&args[0], 0, ctx.len)?;
        let target = Arc::new_cyclic(|me| DeferringTarget {
            platform: ctx.platform.clone(),
            disk,
            held: Mutex::new(Vec::new()),
            me: me.clone(),
        });
        Ok(Box::new(Shared(target)))
    }
}

struct Shared(Arc<DeferringTarget>);

impl Work for DeferringTarget {
    fn run(&self) {
        let held: Vec<_> = self.held.lock().unwrap().drain(..).collect();
        for q in held {
            match q.segment().op {
                Op::Read => {
                    let sector = q.segment().offset;
                    q.remap(&self.disk, sector);
                }
                Op::Write => q.finish(Ok(())),
                _ => drop(q), // dropped unfinished: fails with EIO
            }
        }
    }
}

impl Target<MemPlatform> for Shared {
    fn map(&self, _seg: &Segment, mapper: &mut Mapper<'_, MemPlatform>) {
        self.0.held.lock().unwrap().push(mapper.queue());
        if let Some(me) = self.0.me.upgrade() {
            self.0.platform.queue_work(me, Some(self.0.platform.now_ns() + 1_000));
        }
    }
    fn status(&self, _kind: StatusKind, _out: &mut String) {}
}

#[test]
fn queued_pieces_complete_from_the_worker() {
    let (core, platform) = setup();
    core.targets().register(Arc::new(Deferring)).unwrap();
    assert_eq!(core.targets().register(Arc::new(Deferring)), Err(Errno::EEXIST));
    platform.fill_disk(lower(0), 0, &[3; 512]);
    let minor = make_device(&core, "w", &[(0, 64, "deferring", "/dev/dmtl0")]);
    let (io, req) = platform.request(minor, Op::Read, 0, 512, None);
    core.submit(minor, io.clone(), req);
    platform.run();
    assert_eq!(io.result(), None, "held until the worker's time");
    platform.advance(1_000);
    assert_eq!((io.result(), io.data()), (Some(Ok(())), vec![3; 512]));
    let (io, req) = platform.request(minor, Op::Discard, 0, 512, None);
    core.submit(minor, io.clone(), req);
    platform.advance(1_000);
    assert_eq!(io.result(), Some(Err(Errno::EIO)), "a dropped piece fails, never hangs");
    assert_eq!(core.targets().unregister("deferring"), Err(Errno::EBUSY), "in use by a table");
    command(&core, "remove", "w", &[]).unwrap();
    assert_eq!(core.targets().unregister("deferring"), Ok(()));
}
