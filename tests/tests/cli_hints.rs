//! The hint the CLI gives when the engine refuses to open a database is chosen by the error's
//! kind, not its text: a log under an HMAC opened without its key or with a wrong one, and a
//! data file without a valid meta page, each get the command that explains them; damage to a
//! page gets `aedb check invariants`. End to end through `aedb_cli::run` and
//! `aedb_explorer::run`, and directly on errors whose text says otherwise.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use aedb::commit::validation::Mutation;
use aedb::config::AedbConfig;
use aedb::error::CorruptionKind;
use aedb::{AedbError, AedbInstance, CommitFinality};
use aedb_cli::db::{open_hint, Seen};

struct Output {
    status: i32,
    err: String,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "status {}\n--- stderr\n{}", self.status, self.err)
    }
}

fn invoke(
    program: &str,
    args: &[&str],
    run: fn(Vec<String>, &mut dyn std::io::Write, &mut dyn std::io::Write, bool) -> i32,
) -> Output {
    let mut argv = vec![program.to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = catch_unwind(AssertUnwindSafe(|| run(argv, &mut out, &mut err, false)))
        .unwrap_or_else(|_| panic!("{program} {} panicked", args.join(" ")));
    Output {
        status,
        err: String::from_utf8_lossy(&err).into_owned(),
    }
}

fn aedb(args: &[&str]) -> Output {
    invoke("aedb", args, |a, o, e, p| aedb_cli::run(a, o, e, p))
}

fn explorer(args: &[&str]) -> Output {
    invoke("aedb-explorer", args, |a, o, e, p| {
        aedb_explorer::run(a, o, e, p)
    })
}

fn config() -> AedbConfig {
    AedbConfig {
        page_size: 4096,
        checkpoint_interval_ms: 0,
        buffer_pool_bytes: 8 << 20,
        ..AedbConfig::default()
    }
}

fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// A database with one durable KV entry; with `key`, its log frames carry an HMAC and are
/// left to recovery (the instance is not shut down, so nothing checkpoints them).
fn build(dir: &Path, key: Option<[u8; 32]>) {
    runtime().block_on(async {
        let db = AedbInstance::open(
            AedbConfig {
                hmac_key: key,
                ..config()
            },
            dir,
        )
        .expect("open");
        db.create_project("p").await.expect("project");
        db.commit_with_finality(
            Mutation::KvSet {
                project_id: "p".into(),
                scope_id: "app".into(),
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            },
            CommitFinality::Durable,
        )
        .await
        .expect("kv");
        if key.is_some() {
            std::mem::forget(db);
        } else {
            db.shutdown().await.expect("shutdown");
        }
    });
}

fn hint(out: &Output) -> &str {
    out.err
        .lines()
        .find_map(|l| l.strip_prefix("hint: "))
        .unwrap_or_else(|| panic!("no hint: {out:?}"))
}

#[test]
fn a_log_under_an_hmac_without_its_key_or_with_a_wrong_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    build(&dir, Some([7; 32]));
    let d = s(&dir);
    let dump = tmp.path().join("dump");

    // No key.
    for out in [
        aedb(&["dump", "export", "--data-dir", d, "--out", s(&dump)]),
        explorer(&["projects", "--data-dir", d]),
    ] {
        assert_eq!(out.status, 1, "{out:?}");
        assert_eq!(
            hint(&out),
            "the log is protected by an HMAC: give its key with --hmac-key-hex (64 hex digits)",
            "{out:?}"
        );
    }

    // A wrong key: the frames' HMACs fail; the hint says the key given is the suspect.
    let wrong = "08".repeat(32);
    for out in [
        aedb(&[
            "dump",
            "export",
            "--data-dir",
            d,
            "--out",
            s(&dump),
            "--hmac-key-hex",
            &wrong,
        ]),
        explorer(&["projects", "--data-dir", d, "--hmac-key-hex", &wrong]),
    ] {
        assert_eq!(out.status, 1, "{out:?}");
        let h = hint(&out);
        assert!(
            h.starts_with("the log's HMAC does not verify with the key given"),
            "{out:?}"
        );
        assert!(
            h.contains(&format!("aedb wal dump --data-dir {d} --hmac-key-hex")),
            "{out:?}"
        );
    }

    // The right key opens it.
    let right = "07".repeat(32);
    let out = explorer(&["projects", "--data-dir", d, "--hmac-key-hex", &right]);
    assert_eq!(out.status, 0, "{out:?}");
}

#[test]
fn a_data_file_without_a_valid_meta_page() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    build(&dir, None);
    let d = s(&dir);
    let path = dir.join(aedb::DATA_FILE);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[..2 * 4096].fill(0);
    std::fs::write(&path, bytes).expect("write");
    for out in [
        aedb(&[
            "dump",
            "export",
            "--data-dir",
            d,
            "--out",
            s(&tmp.path().join("dump")),
        ]),
        explorer(&["projects", "--data-dir", d]),
    ] {
        assert_eq!(out.status, 1, "{out:?}");
        assert!(out.err.contains("neither meta page is valid"), "{out:?}");
        assert_eq!(
            hint(&out),
            format!("`aedb meta --data-dir {d}` shows both meta pages"),
            "{out:?}"
        );
    }
}

/// The kind decides, whatever the text says.
#[test]
fn the_hint_follows_the_kind_not_the_text() {
    let dir = Path::new("/db");
    let misleading = "HMAC meta page WAL log page";
    let ok = Seen {
        key_given: false,
        meta_valid: true,
    };
    let data_corruption = |page, kind| AedbError::DataCorruption {
        page,
        kind,
        message: misleading.into(),
    };
    let hmac = "the log is protected by an HMAC: give its key with --hmac-key-hex (64 hex digits)";
    let meta = "`aedb meta --data-dir /db` shows both meta pages";
    let log = "`aedb wal dump --data-dir /db` shows where the log is damaged; --permissive opens \
               the valid prefix";
    let pages = "`aedb check invariants --data-dir /db` lists every damaged page";
    let cases = [
        (data_corruption(None, CorruptionKind::LogHmac), ok, hmac),
        (data_corruption(None, CorruptionKind::LogChain), ok, log),
        (
            data_corruption(Some(7), CorruptionKind::Checksum),
            ok,
            pages,
        ),
        (AedbError::Corruption(misleading.into()), ok, log),
        (
            AedbError::Corruption(misleading.into()),
            Seen {
                meta_valid: false,
                ..ok
            },
            meta,
        ),
        (
            AedbError::Validation(misleading.into()),
            ok,
            "is this an aedb database directory?",
        ),
    ];
    for (err, seen, expected) in cases {
        assert_eq!(open_hint(dir, &err, seen), expected, "{err:?} {seen:?}");
    }
    let wrong_key = open_hint(
        dir,
        &data_corruption(None, CorruptionKind::LogHmac),
        Seen {
            key_given: true,
            ..ok
        },
    );
    assert!(
        wrong_key.starts_with("the log's HMAC does not verify with the key given"),
        "{wrong_key}"
    );
}

/// A log without an HMAC whose middle frame fails its checksum is refused by strict recovery
/// for that damage: `wal dump` must say so, not that the frames carry an HMAC and no key was
/// given (a frame that fails its checksum proves nothing about its HMAC).
#[test]
fn wal_dump_names_a_damaged_frame_not_a_missing_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    runtime().block_on(async {
        let db = AedbInstance::open(config(), dir).expect("open");
        db.create_project("p").await.expect("project");
        for i in 0..20u8 {
            db.commit_with_finality(
                Mutation::KvSet {
                    project_id: "p".into(),
                    scope_id: "app".into(),
                    key: vec![i],
                    value: vec![i; 64],
                },
                CommitFinality::Durable,
            )
            .await
            .expect("kv");
        }
        // Left to recovery: nothing checkpoints the log.
        std::mem::forget(db);
    });
    let wal_dir = dir.join("wal");
    let segment = std::fs::read_dir(&wal_dir)
        .expect("wal dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .max()
        .expect("a segment");
    let mut bytes = std::fs::read(&segment).expect("segment");
    for b in &mut bytes[128 + 200..128 + 216] {
        *b ^= 0x55;
    }
    std::fs::write(&segment, &bytes).expect("damage");
    let out = aedb(&["wal", "dump", "--data-dir", s(dir)]);
    let text = format!("{out:?}");
    assert!(
        !text.contains("carry an HMAC"),
        "a log without an HMAC blamed on a missing key: {text}"
    );
}
