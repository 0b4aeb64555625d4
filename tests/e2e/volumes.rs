//! Linear and striped volumes over three image files, built with the real dmctl binary (NetBSD
//! syntax and dmsetup syntax), written and read through NBD by qemu-io and qemu-img, and the
//! bytes checked at the offsets of the image files where the tables say they belong.

use dm_e2e::{read_file_at, skip_without, tagged, write_file_at, Host, Layout, Target, KIB, MIB, SECTOR};

/// The images: a.img = 254:0, b.img = 254:16, c.img = 254:32.
const IMAGE: u64 = 8 * MIB;

/// `lin`: 1 MiB of a.img from 512 KiB, 2 MiB of b.img from 3 MiB, 1 MiB of c.img from 1 MiB +
/// one sector (an offset that is not a multiple of 4 KiB).
fn linear_layout() -> Layout {
    Layout::new()
        .push(MIB, Target::Linear { image: 0, offset: 512 * KIB })
        .push(2 * MIB, Target::Linear { image: 1, offset: 3 * MIB })
        .push(MIB, Target::Linear { image: 2, offset: MIB + SECTOR })
}

/// The same table in dmctl's file syntax, naming the disks by path, by number, and by path.
fn linear_table(host: &Host) -> String {
    format!(
        "# lin: three images\n0 2048 linear {} 1024\n2048 4096 linear 254:16 6144\n\n6144 2048 linear {} 2049\n",
        host.image(0),
        host.image(2)
    )
}

/// `str`: 3 MiB striped over the three images in 64 KiB chunks.
fn striped_layout() -> Layout {
    Layout::new()
        .push(3 * MIB, Target::Striped { chunk: 64 * KIB, stripes: vec![(0, 4 * MIB), (1, 6 * MIB), (2, 4 * MIB)] })
}

const STRIPED_TABLE: &str = "0 6144 striped 3 128 254:0 8192 254:16 12288 254:32 8192";

/// Writes `data` at `offset` of `export` with qemu-io (`write -s FILE`), and records it in
/// `model`.
fn qemu_write(host: &Host, export: &str, model: &mut [u8], offset: u64, data: &[u8]) {
    let src = host.dir.path().join(format!("src-{export}-{offset}-{}", data.len()));
    std::fs::write(&src, data).unwrap();
    host.qemu_io_ok(export, &[format!("write -s {} {offset} {}", src.display(), data.len())]);
    model[offset as usize..offset as usize + data.len()].copy_from_slice(data);
}

/// Reads the whole device through NBD with qemu-img convert.
fn qemu_read_all(host: &Host, export: &str) -> Vec<u8> {
    let out = host.dir.path().join(format!("{export}.copy"));
    let mut cmd = std::process::Command::new("qemu-img");
    cmd.args(["convert", "-f", "raw", "-O", "raw"]).arg(host.uri(export)).arg(&out);
    dm_e2e::run(cmd, "").ok();
    std::fs::read(&out).unwrap()
}

fn create_volumes(host: &Host) {
    // NetBSD syntax: create, load from a table file, resume.
    host.dmctl(&["create", "lin"]).ok();
    let table = host.dir.path().join("lin.table");
    std::fs::write(&table, linear_table(host)).unwrap();
    host.dmctl(&["load", "lin", table.to_str().unwrap()]).ok();
    host.dmctl(&["resume", "lin"]).ok();
    // dmsetup syntax, through the `dmsetup` name and through `dmctl setup`.
    host.dmsetup(&["create", "str", "--table", STRIPED_TABLE]).ok();
    let r = host.dmctl(&["setup", "table", "str"]).ok();
    assert_eq!(r.stdout, format!("{STRIPED_TABLE}\n"));
}

#[test]
fn linear_and_striped_volumes_land_at_the_right_image_offsets() {
    if skip_without("qemu-io", "linear_and_striped_volumes_land_at_the_right_image_offsets")
        || skip_without("qemu-img", "linear_and_striped_volumes_land_at_the_right_image_offsets")
    {
        return;
    }
    let mut host = Host::start(&[IMAGE, IMAGE, IMAGE], &[]);
    create_volumes(&host);
    let images = host.images.clone();

    // Linear: the whole device in one 4 MiB write, then writes across the line boundaries.
    let lin = linear_layout();
    let mut lin_model = vec![0u8; lin.size() as usize];
    qemu_write(&host, "lin", &mut lin_model, 0, &tagged(1, 0, lin.size() as usize));
    for (seed, offset, len) in
        [(2, MIB - 4 * KIB, 8 * KIB), (3, 3 * MIB - SECTOR, 3 * SECTOR), (4, 4 * MIB - 64 * KIB, 64 * KIB)]
    {
        qemu_write(&host, "lin", &mut lin_model, offset, &tagged(seed, offset, len as usize));
    }
    lin.assert_images(&images, 0, &lin_model);
    // Nothing around the mapped ranges was touched.
    assert_eq!(read_file_at(&images[0], 512 * KIB - SECTOR, SECTOR as usize), vec![0; 512]);
    assert_eq!(read_file_at(&images[0], 1536 * KIB, SECTOR as usize), vec![0; 512]);
    assert_eq!(read_file_at(&images[2], MIB, SECTOR as usize), vec![0; 512]);
    assert_eq!(qemu_read_all(&host, "lin"), lin_model, "lin read back through NBD");

    // Striped: one write of the whole device, then writes across chunk boundaries, a
    // write-zeroes across three chunks, and a write that wraps from the last stripe to the first.
    let st = striped_layout();
    let mut st_model = vec![0u8; st.size() as usize];
    qemu_write(&host, "str", &mut st_model, 0, &tagged(5, 0, st.size() as usize));
    for (seed, offset, len) in [(6, 60 * KIB, 10 * KIB), (7, 190 * KIB, 10 * KIB), (8, 3 * MIB - 70 * KIB, 70 * KIB)] {
        qemu_write(&host, "str", &mut st_model, offset, &tagged(seed, offset, len as usize));
    }
    host.qemu_io_ok("str", &["write -z 100k 150k".to_owned()]);
    st_model[100 * KIB as usize..250 * KIB as usize].fill(0);
    st.assert_images(&images, 0, &st_model);
    assert_eq!(qemu_read_all(&host, "str"), st_model, "str read back through NBD");

    // Reads come from the image files: change bytes behind dmhost's back and read them through
    // NBD at the device offsets the tables map them to.
    write_file_at(&images[2], MIB + SECTOR + 4096, &[0x5a; 4096]); // lin: 3 MiB + 4 KiB
    write_file_at(&images[1], 6 * MIB + 64 * KIB, &[0xa5; 8192]); // str: chunk 4 (b.img's 2nd)
    host.qemu_io_ok("lin", &[format!("read -P 0x5a {} 4k", 3 * MIB + 4 * KIB)]);
    host.qemu_io_ok("str", &[format!("read -P 0xa5 {} 8k", 4 * 64 * KIB)]);
    // And a pattern check that must fail does fail (qemu-io's verification is live).
    let r = host.qemu_io("str", &[format!("read -P 0x5a {} 8k", 4 * 64 * KIB)]);
    assert!(r.stdout.contains("Pattern verification failed"), "{r:?}");

    host.stop_cleanly();
}

#[test]
fn data_written_through_nbd_survives_sigterm_and_a_new_dmhost() {
    if skip_without("qemu-io", "data_written_through_nbd_survives_sigterm_and_a_new_dmhost") {
        return;
    }
    let mut host = Host::start(&[IMAGE, IMAGE, IMAGE], &[]);
    create_volumes(&host);
    host.qemu_io_ok("str", &["write -P 0x33 64k 192k".to_owned(), "flush".to_owned()]);
    host.qemu_io_ok("lin", &["write -P 0x44 1020k 8k".to_owned()]);
    host.stop_cleanly();

    // The bytes are in the files where the tables put them.
    let images = host.images.clone();
    let st = striped_layout();
    st.assert_images(&images, 64 * KIB, &[0x33; 192 * KIB as usize]);
    linear_layout().assert_images(&images, 1020 * KIB, &[0x44; 8 * KIB as usize]);

    // A new dmhost on the same files, the same tables: the same bytes come back over NBD.
    host.restart(&[]);
    create_volumes(&host);
    host.qemu_io_ok("str", &["read -P 0x33 64k 192k".to_owned(), "read -P 0 0 64k".to_owned()]);
    host.qemu_io_ok("lin", &["read -P 0x44 1020k 8k".to_owned()]);
    host.stop_cleanly();
}
