//! The table lines the delay and flakey tests load, with what Linux prints for them: shared by
//! the unit tests (which compare our lines with these) and the differential test against Linux
//! (which loads the same lines into Linux's dm and into ours, and compares the two).
//!
//! The expected lines and messages of Linux 6.1 were recorded in the oracle VM
//! (shared/linux-dm-oracle, kernel 6.1.0-56); those of the features Linux 6.1 lacks are this
//! port's, in 6.1's format, with Linux 6.12's messages.

use dmcore::Errno;

/// Lines Linux 6.1 accepted, with its TABLE and INFO lines (the TABLE reproduces the argument
/// count given). Recorded in the oracle VM (the differential test, sys/tests/linux_oracle.rs,
/// checks them again).
pub const DELAY_ACCEPTED: &[(&str, &str, &str)] = &[
    ("0 8192 delay /dev/vda 0 50", "0 8192 delay 254:0 0 50", "0 8192 delay 0 0 0"),
    ("0 8192 delay /dev/vda 0 50 /dev/vdb 0 100", "0 8192 delay 254:0 0 50 254:16 0 100", "0 8192 delay 0 0 0"),
    (
        "0 8192 delay /dev/vda 0 50 /dev/vdb 0 100 /dev/vdb 2048 10",
        "0 8192 delay 254:0 0 50 254:16 0 100 254:16 2048 10",
        "0 8192 delay 0 0 0",
    ),
    ("0 8192 delay /dev/vda 0 0", "0 8192 delay 254:0 0 0", "0 8192 delay 0 0 0"),
    ("0 8192 delay 254:0 2048 4294967295", "0 8192 delay 254:0 2048 4294967295", "0 8192 delay 0 0 0"),
    ("0 8192 delay /dev/vda 0 1 254:16 8 0", "0 8192 delay 254:0 0 1 254:16 8 0", "0 8192 delay 0 0 0"),
];

/// Lines Linux 6.1 refused, with the message it logged (recorded in the oracle VM).
pub const DELAY_REFUSED: &[(&str, &str, Errno)] = &[
    ("0 8192 delay /dev/vda 0", "delay: Requires exactly 3, 6 or 9 arguments", Errno::EINVAL),
    ("0 8192 delay /dev/vda 0 50 /dev/vda", "delay: Requires exactly 3, 6 or 9 arguments", Errno::EINVAL),
    ("0 8192 delay", "delay: Requires exactly 3, 6 or 9 arguments", Errno::EINVAL),
    ("0 8192 delay a b c d e f g h i j", "delay: Requires exactly 3, 6 or 9 arguments", Errno::EINVAL),
    ("0 8192 delay /dev/vda x 50", "delay: Invalid device sector", Errno::EINVAL),
    ("0 8192 delay /dev/vda -1 50", "delay: Invalid device sector", Errno::EINVAL),
    ("0 8192 delay /dev/vda 0 50ms", "delay: Invalid delay", Errno::EINVAL),
    ("0 8192 delay /dev/vda 0 -1", "delay: Invalid delay", Errno::EINVAL),
    // Linux 6.1's sscanf wraps this number to 0 and accepts the line; refused here.
    ("0 8192 delay /dev/vda 0 4294967296", "delay: Invalid delay", Errno::EINVAL),
    ("0 8192 delay /dev/vda 0 50 /dev/vdb x 100", "delay: Invalid device sector", Errno::EINVAL),
    ("0 8192 delay /dev/vda 0 50 /dev/vdb 0 y", "delay: Invalid delay", Errno::EINVAL),
    ("0 8192 delay /dev/vda 0 50 /dev/vdb 0 100 /dev/vdb 0 z", "delay: Invalid delay", Errno::EINVAL),
];

/// Lines Linux 6.1 accepted, with its TABLE line (INFO is always empty: `0 8192 flakey `).
/// Recorded in the oracle VM; sys/tests/linux_oracle.rs checks them again.
pub const FLAKEY_ACCEPTED_6_1: &[(&str, &str)] = &[
    ("0 8192 flakey /dev/vda 0 1 1", "0 8192 flakey 254:0 0 1 1 0 "),
    ("0 8192 flakey /dev/vda 0 1 1 0", "0 8192 flakey 254:0 0 1 1 0 "),
    ("0 8192 flakey /dev/vda 0 1 1 0 junk", "0 8192 flakey 254:0 0 1 1 0 "),
    ("0 8192 flakey /dev/vda 0 1 1 1 drop_writes extra", "0 8192 flakey 254:0 0 1 1 1 drop_writes "),
    ("0 8192 flakey /dev/vda 0 1 1 1 DROP_WRITES", "0 8192 flakey 254:0 0 1 1 1 drop_writes "),
    ("0 8192 flakey /dev/vda 0 0 10 1 error_writes", "0 8192 flakey 254:0 0 0 10 1 error_writes "),
    ("0 8192 flakey /dev/vda 2048 3 4294967292", "0 8192 flakey 254:0 2048 3 4294967292 0 "),
    (
        "0 8192 flakey 254:16 8 5 5 5 corrupt_bio_byte 4294967295 W 255 4294967295",
        "0 8192 flakey 254:16 8 5 5 5 corrupt_bio_byte 4294967295 w 255 4294967295 ",
    ),
    (
        "0 8192 flakey /dev/vda 0 5 5 6 error_writes corrupt_bio_byte 7 r 9 2048",
        "0 8192 flakey 254:0 0 5 5 6 error_writes corrupt_bio_byte 7 r 9 2048 ",
    ),
];

/// Lines with Linux 6.12's features, and the TABLE line this port prints for them: 6.12's
/// feature count and words, in 6.1's format (count always printed, each word followed by a
/// space). Linux 6.1 refuses all of them ("Unrecognised flakey feature requested").
pub const FLAKEY_ACCEPTED_NEWER: &[(&str, &str)] = &[
    ("0 8192 flakey /dev/vda 0 0 10 1 error_reads", "0 8192 flakey 254:0 0 0 10 1 error_reads "),
    ("0 8192 flakey /dev/vda 0 0 10 1 ERROR_READS", "0 8192 flakey 254:0 0 0 10 1 error_reads "),
    (
        "0 8192 flakey /dev/vda 0 0 10 2 random_read_corrupt 100",
        "0 8192 flakey 254:0 0 0 10 2 random_read_corrupt 100 ",
    ),
    (
        "0 8192 flakey /dev/vda 0 0 10 2 random_write_corrupt 1000000000",
        "0 8192 flakey 254:0 0 0 10 2 random_write_corrupt 1000000000 ",
    ),
    // A zero probability is no feature: it is not printed (and every I/O fails while down).
    ("0 8192 flakey /dev/vda 0 0 10 2 random_read_corrupt 0", "0 8192 flakey 254:0 0 0 10 0 "),
    (
        "0 8192 flakey /dev/vda 0 3 7 8 random_read_corrupt 6 drop_writes corrupt_bio_byte 9 r 8 7",
        "0 8192 flakey 254:0 0 3 7 8 drop_writes corrupt_bio_byte 9 r 8 7 random_read_corrupt 6 ",
    ),
    (
        "0 8192 flakey /dev/vda 0 3 7 8 error_reads corrupt_bio_byte 9 w 8 7 random_write_corrupt 6",
        "0 8192 flakey 254:0 0 3 7 8 error_reads corrupt_bio_byte 9 w 8 7 random_write_corrupt 6 ",
    ),
    (
        "0 8192 flakey /dev/vda 0 3 7 5 error_writes random_read_corrupt 1 random_write_corrupt 0 x y z",
        "0 8192 flakey 254:0 0 3 7 3 error_writes random_read_corrupt 1 ",
    ),
];

/// Lines refused, with the message: Linux 6.1's as recorded in the oracle VM, or for the 6.12
/// features Linux 6.12's (from its source).
pub const FLAKEY_REFUSED: &[(&str, &str)] = &[
    ("0 8192 flakey /dev/vda 0 1", "Invalid argument count"),
    ("0 8192 flakey", "Invalid argument count"),
    ("0 8192 flakey /dev/vda x 1 1", "Invalid device sector"),
    ("0 8192 flakey /dev/vda -1 1 1", "Invalid device sector"),
    // Linux 6.1's sscanf wraps this number to 0 and accepts the line; refused here.
    ("0 8192 flakey /dev/vda 18446744073709551616 1 1", "Invalid device sector"),
    ("0 8192 flakey /dev/vda 0 x 1", "Invalid up interval"),
    // Linux 6.1's sscanf wraps this number to 0 and accepts the line; refused here.
    ("0 8192 flakey /dev/vda 0 4294967296 1", "Invalid up interval"),
    // 6.1 reads the down interval with the up interval's message.
    ("0 8192 flakey /dev/vda 0 1 x", "Invalid up interval"),
    ("0 8192 flakey /dev/vda 0 0 0", "Total (up + down) interval is zero"),
    ("0 8192 flakey /dev/vda 0 1 4294967295", "Total (up + down) interval is zero"),
    ("0 8192 flakey /dev/vda 0 2 4294967295", "Interval overflow"),
    ("0 8192 flakey /dev/vda 0 1 1 1", "Invalid number of feature args"),
    ("0 8192 flakey /dev/vda 0 1 1 x", "Invalid number of feature args"),
    ("0 8192 flakey /dev/vda 0 1 1 -1 drop_writes", "Invalid number of feature args"),
    ("0 8192 flakey /dev/vda 0 1 1 7 drop_writes a b c d e f", "Invalid number of feature args"),
    (
        "0 8192 flakey /dev/vda 0 1 1 10 corrupt_bio_byte 1 w 0 0 corrupt_bio_byte 2 r 3 4",
        "Invalid number of feature args",
    ),
    ("0 8192 flakey /dev/vda 0 1 1 12 error_reads a b c d e f g h i j k", "Invalid number of feature args"),
    ("0 8192 flakey /dev/vda 0 1 1 1 frobnicate", "Unrecognised flakey feature requested"),
    ("0 8192 flakey /dev/vda 0 1 1 2 drop_writes drop_writes", "Feature drop_writes duplicated"),
    ("0 8192 flakey /dev/vda 0 1 1 2 error_writes error_writes", "Feature error_writes duplicated"),
    (
        "0 8192 flakey /dev/vda 0 1 1 2 error_writes drop_writes",
        "Feature drop_writes conflicts with feature error_writes",
    ),
    (
        "0 8192 flakey /dev/vda 0 1 1 2 drop_writes error_writes",
        "Feature error_writes conflicts with feature drop_writes",
    ),
    ("0 8192 flakey /dev/vda 0 1 1 1 corrupt_bio_byte 32 r 1 0", "Feature corrupt_bio_byte requires parameters"),
    ("0 8192 flakey /dev/vda 0 1 1 2 corrupt_bio_byte 1 r 0 0", "Insufficient feature arguments"),
    ("0 8192 flakey /dev/vda 0 0 10 4 corrupt_bio_byte 32 r 1 0", "Insufficient feature arguments"),
    ("0 8192 flakey /dev/vda 0 1 1 5 corrupt_bio_byte 0 r 1 0", "Invalid corrupt bio byte"),
    ("0 8192 flakey /dev/vda 0 1 1 5 corrupt_bio_byte x r 1 0", "Invalid corrupt bio byte"),
    ("0 8192 flakey /dev/vda 0 1 1 5 corrupt_bio_byte 1 x 1 0", "Invalid corrupt bio direction (r or w)"),
    (
        "0 8192 flakey /dev/vda 0 1 1 5 corrupt_bio_byte 1 R 256 0",
        "Invalid corrupt value to write into bio byte (0-255)",
    ),
    ("0 8192 flakey /dev/vda 0 1 1 5 corrupt_bio_byte 1 W 255 x", "Invalid corrupt bio flags mask"),
    (
        "0 8192 flakey /dev/vda 0 5 5 6 drop_writes corrupt_bio_byte 224 w 0 32",
        "drop_writes is incompatible with corrupt_bio_byte with the WRITE flag set",
    ),
    (
        "0 8192 flakey /dev/vda 0 1 1 6 error_writes corrupt_bio_byte 1 w 0 0",
        "error_writes is incompatible with corrupt_bio_byte with the WRITE flag set",
    ),
    (
        "0 8192 flakey /dev/vda 0 5 5 6 corrupt_bio_byte 1 w 0 0 error_writes",
        "error_writes is incompatible with corrupt_bio_byte with the WRITE flag set",
    ),
    // Linux 6.12's checks and messages for its features.
    ("0 8192 flakey /dev/vda 0 1 1 2 error_reads error_reads", "Feature error_reads duplicated"),
    ("0 8192 flakey /dev/vda 0 1 1 1 random_read_corrupt 5", "Feature random_read_corrupt requires a parameter"),
    ("0 8192 flakey /dev/vda 0 1 1 1 random_write_corrupt 5", "Feature random_write_corrupt requires a parameter"),
    ("0 8192 flakey /dev/vda 0 1 1 2 random_read_corrupt 1000000001", "Invalid random corrupt argument"),
    ("0 8192 flakey /dev/vda 0 1 1 2 random_write_corrupt x", "Invalid random corrupt argument"),
    (
        "0 8192 flakey /dev/vda 0 1 1 4 random_read_corrupt 5 random_read_corrupt 6",
        "Feature random_read_corrupt duplicated",
    ),
    (
        "0 8192 flakey /dev/vda 0 1 1 4 random_write_corrupt 5 random_write_corrupt 6",
        "Feature random_write_corrupt duplicated",
    ),
    (
        "0 8192 flakey /dev/vda 0 1 1 3 drop_writes random_write_corrupt 5",
        "drop_writes is incompatible with random_write_corrupt or corrupt_bio_byte with the WRITE flag set",
    ),
    (
        "0 8192 flakey /dev/vda 0 1 1 3 random_write_corrupt 5 error_writes",
        "error_writes is incompatible with random_write_corrupt or corrupt_bio_byte with the WRITE flag set",
    ),
    (
        "0 8192 flakey /dev/vda 0 1 1 3 error_reads random_read_corrupt 5",
        "error_reads is incompatible with random_read_corrupt or corrupt_bio_byte with the READ flag set",
    ),
    (
        "0 8192 flakey /dev/vda 0 1 1 6 corrupt_bio_byte 1 r 0 0 error_reads",
        "error_reads is incompatible with random_read_corrupt or corrupt_bio_byte with the READ flag set",
    ),
    (
        "0 8192 flakey /dev/vda 0 3 7 9 error_reads drop_writes corrupt_bio_byte 9 w 8 7 random_write_corrupt 6",
        "drop_writes is incompatible with corrupt_bio_byte with the WRITE flag set",
    ),
    (
        "0 8192 flakey /dev/vda 0 3 7 9 error_reads error_writes random_write_corrupt 6 corrupt_bio_byte 9 r 8 7",
        "error_writes is incompatible with random_write_corrupt or corrupt_bio_byte with the WRITE flag set",
    ),
    (
        "0 8192 flakey /dev/vda 0 3 7 8 random_write_corrupt 6 error_reads corrupt_bio_byte 9 r 8 7",
        "error_reads is incompatible with random_read_corrupt or corrupt_bio_byte with the READ flag set",
    ),
    (
        "0 8192 flakey /dev/vda 0 3 7 9 random_write_corrupt 5 random_read_corrupt 6 drop_writes_not",
        "Invalid number of feature args",
    ),
    (
        "0 8192 flakey /dev/vda 0 3 7 5 random_write_corrupt 5 random_read_corrupt 6 frobnicate",
        "Unrecognised flakey feature requested",
    ),
    ("0 8192 flakey /dev/nonexistent 0 1 1", "Device lookup failed"),
];
