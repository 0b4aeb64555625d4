//! Property: for random valid tables of 1 to 10,000 lines (linear, striped, zero, error), every
//! sector of the device is mapped exactly as a naive per-sector model says.

mod common;

use common::*;
use dmcore::platform::mem::MemPlatform;
use dmcore::plist::{write_dict, Dict, Number, Value};
use dmcore::{Core, DevT, Errno, Op};
use proptest::prelude::*;

const DISK_SECTORS: u64 = 4096;

/// Where the model sends one sector.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dest {
    Disk(DevT, u64),
    Zero,
    Error,
}

#[derive(Clone, Debug)]
enum Line {
    Linear { disk: u32, offset: u64 },
    Striped { chunk: u64, stripes: Vec<(u32, u64)> },
    Zero,
    Error,
}

impl Line {
    fn render(&self) -> (&'static str, String) {
        match self {
            Line::Linear { disk, offset } => ("linear", format!("/dev/dmtl{disk} {offset}")),
            Line::Striped { chunk, stripes } => {
                let devs: Vec<String> = stripes.iter().map(|(d, o)| format!("197:{d} {o}")).collect();
                ("striped", format!("{} {} {}", stripes.len(), chunk, devs.join(" ")))
            }
            Line::Zero => ("zero", String::new()),
            Line::Error => ("error", String::new()),
        }
    }

    /// The model: sector `s` of this line.
    fn dest(&self, s: u64) -> Dest {
        match self {
            Line::Linear { disk, offset } => Dest::Disk(lower(*disk), offset + s),
            Line::Striped { chunk, stripes } => {
                let n = stripes.len() as u64;
                let (c, within) = (s / chunk, s % chunk);
                let (disk, offset) = stripes[(c % n) as usize];
                Dest::Disk(lower(disk), offset + (c / n) * chunk + within)
            }
            Line::Zero => Dest::Zero,
            Line::Error => Dest::Error,
        }
    }
}

/// A line of `len` sectors whose lower areas fit the disks.
fn line_strategy() -> impl Strategy<Value = (u64, Line)> {
    prop_oneof![
        6 => (1u64..64, 0u32..3).prop_flat_map(|(len, disk)| (Just(len), (0..DISK_SECTORS - len)).prop_map(move |(len, offset)| (len, Line::Linear { disk, offset }))),
        3 => (1u64..4, 1u64..5, 1u64..4).prop_flat_map(|(n, chunk, rows)| {
            let width = chunk * rows;
            (Just((n, chunk, width)), proptest::collection::vec((0u32..3, 0..DISK_SECTORS - width), n as usize))
        }).prop_map(|((n, chunk, width), stripes)| (n * width, Line::Striped { chunk, stripes })),
        1 => (1u64..32).prop_map(|len| (len, Line::Zero)),
        1 => (1u64..32).prop_map(|len| (len, Line::Error)),
    ]
}

fn table_strategy() -> impl Strategy<Value = Vec<(u64, Line)>> {
    // Sizes spread over 1..10,000 lines, small tables more often.
    prop_oneof![
        4 => proptest::collection::vec(line_strategy(), 1..10),
        3 => proptest::collection::vec(line_strategy(), 10..300),
        1 => proptest::collection::vec(line_strategy(), 9_000..=10_000),
    ]
}

/// Loads `lines` directly as a table and returns the device (bypassing the 128 KiB request
/// limit, which a 10,000-line table exceeds).
fn load(core: &Core<MemPlatform>, lines: &[(u64, Line)]) -> u32 {
    let mut d = Dict::new();
    d.set_string("command", b"create");
    d.set_string("name", b"p");
    d.insert("version", Value::Array(vec![Value::Number(Number::Unsigned(4))]));
    assert_eq!(send(core, &write_dict(&d), ROOT).unwrap().command_result, Ok(()));
    let minor = core.minor_of("p").unwrap();
    let mut start = 0;
    let table: Vec<dmcore::table::TableLine> = lines
        .iter()
        .map(|(len, line)| {
            let (ty, params) = line.render();
            let l = dmcore::table::TableLine { start, len: *len, target_type: ty.into(), params };
            start += len;
            l
        })
        .collect();
    core.load_table(minor, &table).expect("valid table");
    d.set_string("command", b"resume");
    assert_eq!(send(core, &write_dict(&d), ROOT).unwrap().command_result, Ok(()));
    minor
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn every_sector_maps_as_the_model_says(lines in table_strategy(), piece in 1u64..200) {
        let (core, platform) = setup();
        let minor = load(&core, &lines);
        let total: u64 = lines.iter().map(|(l, _)| l).sum();
        // The model, sector by sector.
        let mut model = Vec::with_capacity(total as usize);
        for (len, line) in &lines {
            for s in 0..*len {
                model.push(line.dest(s));
            }
        }
        platform.hold(true);
        let mut sector = 0;
        while sector < total {
            let n = piece.min(total - sector);
            let (io, req) = platform.request(minor, Op::Read, sector, n * 512, Some(&vec![0xaa; (n * 512) as usize]));
            core.submit(minor, io.clone(), req);
            // Expand the issued children into per-sector destinations, by buffer position.
            let mut got = vec![None; n as usize];
            for c in platform.queued_children() {
                prop_assert_eq!(c.op, Op::Read);
                prop_assert_eq!(c.buf_offset % 512, 0);
                for k in 0..c.sectors {
                    let at = c.buf_offset as u64 / 512 + k;
                    prop_assert!(got[at as usize].is_none(), "sector {} mapped twice", sector + at);
                    got[at as usize] = Some(Dest::Disk(c.dev, c.sector + k));
                }
            }
            let mut want_error = false;
            for (i, g) in got.iter().enumerate() {
                let want = model[(sector + i as u64) as usize];
                match want {
                    Dest::Disk(..) => prop_assert_eq!(*g, Some(want), "sector {}", sector + i as u64),
                    Dest::Zero | Dest::Error => prop_assert_eq!(*g, None, "sector {}", sector + i as u64),
                }
                want_error |= want == Dest::Error;
            }
            platform.run();
            let result = io.result();
            prop_assert_eq!(result, Some(if want_error { Err(Errno::EIO) } else { Ok(()) }));
            if !want_error {
                let data = io.data();
                for (i, w) in model[sector as usize..(sector + n) as usize].iter().enumerate() {
                    if *w == Dest::Zero {
                        prop_assert!(data[i * 512..(i + 1) * 512].iter().all(|&b| b == 0), "zero sector {}", sector + i as u64);
                    }
                }
            }
            sector += n;
        }
    }
}
