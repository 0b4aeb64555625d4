//! The third status kind, Linux's IMA measurement record (`STATUSTYPE_IMA`), for every built-in
//! target: what Linux 6.1's status functions write for it (dm-linear.c, dm-stripe.c; nothing for
//! zero and error, which have no status function, nor for delay and flakey, whose IMA case writes
//! an empty string).

mod dmtest;

use dmcore::platform::mem::Fault;
use dmcore::table::{Table, TableLine};
use dmcore::target::StatusKind;
use dmcore::{Errno, Op};
use dmtest::*;

fn line(start: u64, len: u64, ty: &str, params: &str) -> TableLine {
    TableLine { start, len, target_type: ty.into(), params: params.into() }
}

#[test]
fn every_builtin_target_writes_linux_ima_record() {
    let (core, platform) = setup(16384);
    let lines = [
        line(0, 8, "linear", "/dev/vda 2048"),
        line(8, 256, "striped", "2 128 /dev/vda 0 254:16 1024"),
        line(264, 8, "zero", ""),
        line(272, 8, "error", ""),
        line(280, 8, "delay", "/dev/vda 0 50 /dev/vdb 0 100 /dev/vdb 2048 10"),
        line(288, 8, "flakey", "/dev/vda 0 1 1 1 drop_writes"),
    ];
    let t = Table::build(&platform, core.targets(), 1, &lines, false).unwrap();
    let ima: Vec<String> = t.status(StatusKind::Ima).into_iter().map(|(_, _, _, s)| s).collect();
    assert_eq!(
        ima,
        vec![
            "target_name=linear,target_version=1.4.0,device_name=254:0,start=2048;".to_string(),
            "target_name=striped,target_version=1.6.0,stripes=2,chunk_size=128,\
             stripe_0_device_name=254:0,stripe_0_physical_start=0,stripe_0_status=A,\
             stripe_1_device_name=254:16,stripe_1_physical_start=1024,stripe_1_status=A;"
                .to_string(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ]
    );
    // The other two kinds are unchanged by the third.
    let table: Vec<String> = t.status(StatusKind::Table).into_iter().map(|(_, _, _, s)| s).collect();
    assert_eq!(table[0], "254:0 2048");
    assert_eq!(table[1], "2 128 254:0 0 254:16 1024");
}

#[test]
fn a_failed_stripe_shows_as_dead_in_info_and_ima() {
    let (core, platform) = setup(16384);
    let minor = create(&core, "s", &["0 256 striped 2 128 /dev/vda 0 /dev/vdb 0"]).unwrap();
    platform.add_fault(Fault::range(VDB, 0, 128, Errno::EIO));
    assert_eq!(platform.run_io(&core, minor, Op::Read, 128, 512, None).result(), Some(Err(Errno::EIO)));
    assert_eq!(status(&core, "s"), vec!["0 256 striped 2 254:0 254:16 1 AD"]);
    // IMA is not reachable through the control path: the same line, built directly, told of a
    // failed child on stripe 1.
    let t = Table::build(&platform, core.targets(), 2, &[line(0, 256, "striped", "2 128 254:0 0 254:16 0")], false)
        .unwrap();
    t.entry(0).unwrap().target.end_io(1, Err(Errno::EIO));
    assert_eq!(t.status(StatusKind::Info)[0].3, "2 254:0 254:16 1 AD");
    assert!(t.status(StatusKind::Ima)[0]
        .3
        .ends_with(",stripe_0_status=A,stripe_1_device_name=254:16,stripe_1_physical_start=0,stripe_1_status=D;"));
}
