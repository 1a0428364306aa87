//! The `aedb` command given malformed arguments: a clear error and exit status 1, never a panic.
//! Run in-process through `aedb_cli::run`, as `tests/cli/` does.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use aedb::config::AedbConfig;
use aedb::AedbInstance;

struct Output {
    status: i32,
    err: String,
}

fn aedb(args: &[&str]) -> Output {
    let mut argv = vec!["aedb".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = catch_unwind(AssertUnwindSafe(|| {
        aedb_cli::run(argv, &mut out, &mut err, false)
    }))
    .unwrap_or_else(|_| panic!("aedb {} panicked", args.join(" ")));
    Output {
        status,
        err: String::from_utf8_lossy(&err).into_owned(),
    }
}

/// A database with nothing in it, shut down cleanly.
fn empty_database(dir: &Path) {
    let config = AedbConfig {
        page_size: 4096,
        buffer_pool_bytes: 8 << 20,
        ..AedbConfig::default()
    };
    let db = AedbInstance::open(config, dir).expect("open");
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(db.shutdown())
        .expect("shutdown");
}

#[test]
fn a_non_ascii_hmac_key_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    empty_database(&dir);
    let d = dir.to_str().expect("utf-8 path");
    // 64 bytes but 63 characters: a byte-length check alone would let it through.
    let wide = format!("é{}", "0".repeat(62));
    let keys = ["aé0", "é", "0xé1", "ab\u{1F600}", wide.as_str()];
    let commands: [&[&str]; 2] = [&["check", "invariants"], &["wal", "dump"]];
    for command in commands {
        for key in keys {
            let mut args = command.to_vec();
            args.extend(["--data-dir", d, "--hmac-key-hex", key]);
            let out = aedb(&args);
            assert_eq!(out.status, 1, "{args:?}: {}", out.err);
            assert!(
                out.err.contains(&format!(
                    "error: --hmac-key-hex: {key:?} is not hexadecimal"
                )),
                "{args:?}: {}",
                out.err
            );
            assert!(out.err.contains("is not a hex digit"), "{}", out.err);
            assert!(
                out.err
                    .contains("hint: give the 32-byte key as 64 hexadecimal digits"),
                "{}",
                out.err
            );
        }
    }
}

#[test]
fn a_key_of_the_wrong_length_is_a_clear_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    empty_database(&dir);
    let d = dir.to_str().expect("utf-8 path");
    let short = "ab".repeat(31);
    let out = aedb(&["wal", "dump", "--data-dir", d, "--hmac-key-hex", &short]);
    assert_eq!(out.status, 1, "{}", out.err);
    assert!(
        out.err
            .contains("a key is 32 bytes (64 hex digits), this one has 31"),
        "{}",
        out.err
    );
}
