//! Read-only: every inspection command leaves every file's bytes as they were, on a closed
//! database and beside a live writer.

use std::path::Path;

use aedb::commit::validation::Mutation;
use aedb::{AedbInstance, CommitFinality};

use crate::support::{aedb, build, config, explorer, fingerprint, runtime, s, table_id, Output};

/// Every inspection command, as run against `dir`.
fn inspections(dir: &Path, out_dir: &Path) -> Vec<Vec<String>> {
    let d = s(dir).to_string();
    let o = |name: &str| s(&out_dir.join(name)).to_string();
    let users = table_id(dir, "demo/app/users");
    let v = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        v(&[
            "aedb",
            "dump",
            "export",
            "--data-dir",
            &d,
            "--out",
            &o("x.aedbdump"),
        ]),
        v(&[
            "aedb",
            "dump",
            "parity",
            "--dump",
            &o("x.aedbdump"),
            "--data-dir",
            &d,
        ]),
        v(&["aedb", "check", "invariants", "--data-dir", &d]),
        v(&["aedb", "pages", "stat", "--data-dir", &d]),
        v(&["aedb", "pages", "dump", "2", "--data-dir", &d, "--hex"]),
        v(&[
            "aedb",
            "pages",
            "map",
            "--data-dir",
            &d,
            "--svg",
            &o("m.svg"),
        ]),
        v(&["aedb", "tree", "list", "--data-dir", &d]),
        v(&["aedb", "tree", "dump", &users, "--data-dir", &d, "--keys"]),
        v(&["aedb", "wal", "dump", "--data-dir", &d]),
        v(&["aedb", "meta", "--data-dir", &d]),
        v(&["aedb-explorer", "projects", "--data-dir", &d]),
        v(&[
            "aedb-explorer",
            "scopes",
            "--data-dir",
            &d,
            "--project",
            "demo",
        ]),
        v(&[
            "aedb-explorer",
            "tables",
            "--data-dir",
            &d,
            "--project",
            "demo",
            "--scope",
            "app",
        ]),
        v(&[
            "aedb-explorer",
            "describe-table",
            "--data-dir",
            &d,
            "--project",
            "demo",
            "--scope",
            "app",
            "--table",
            "users",
        ]),
        v(&[
            "aedb-explorer",
            "scan-table",
            "--data-dir",
            &d,
            "--project",
            "demo",
            "--scope",
            "app",
            "--table",
            "users",
            "--limit",
            "7",
        ]),
        v(&[
            "aedb-explorer",
            "scan-kv",
            "--data-dir",
            &d,
            "--project",
            "demo",
            "--scope",
            "app",
        ]),
    ]
}

fn run_argv(argv: &[String]) -> Output {
    let args: Vec<&str> = argv[1..].iter().map(String::as_str).collect();
    if argv[0] == "aedb" {
        aedb(&args)
    } else {
        explorer(&args)
    }
}

#[test]
fn inspection_changes_no_byte_also_beside_a_live_writer() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    build(&dir);
    let outputs = tmp.path().join("outputs");
    std::fs::create_dir(&outputs).expect("mkdir");
    let commands = inspections(&dir, &outputs);

    // Offline: a closed database.
    let before = fingerprint(&dir);
    for argv in &commands {
        let out = run_argv(argv);
        assert_eq!(out.status, 0, "{}: {out:?}", argv.join(" "));
        assert_eq!(
            before,
            fingerprint(&dir),
            "{} changed the directory",
            argv.join(" ")
        );
    }

    // Beside a live writer holding the directory (its lock, its open log segment) whose
    // newest commits exist only in the log.
    let rt = runtime();
    let live = AedbInstance::open(config(), &dir).expect("live writer");
    rt.block_on(async {
        live.commit_with_finality(
            Mutation::KvSet {
                project_id: "demo".into(),
                scope_id: "extra".into(),
                key: b"live".to_vec(),
                value: b"only in the log".to_vec(),
            },
            CommitFinality::Durable,
        )
        .await
        .expect("live commit");
    });
    let before = fingerprint(&dir);
    for argv in &commands {
        let out = run_argv(argv);
        assert_eq!(out.status, 0, "{}: {out:?}", argv.join(" "));
        assert_eq!(
            before,
            fingerprint(&dir),
            "{} changed the directory beside a live writer",
            argv.join(" ")
        );
    }
    let out = explorer(&[
        "scan-kv",
        "--data-dir",
        s(&dir),
        "--project",
        "demo",
        "--scope",
        "extra",
    ]);
    assert!(
        out.out.contains("\"live\""),
        "the log's newest commit is seen: {out:?}"
    );
    let out = aedb(&["wal", "dump", "--data-dir", s(&dir), "--from-lsn", "0"]);
    assert!(
        out.out
            .contains("put    kv:demo:extra [KV space demo/extra] key \"live\""),
        "{out:?}"
    );
    // The writer is unaffected and goes on.
    rt.block_on(async {
        live.kv_set("demo", "extra", b"after".to_vec(), b"x".to_vec())
            .await
            .expect("commit after");
        live.shutdown().await.expect("shutdown");
    });
    let out = aedb(&["check", "invariants", "--data-dir", s(&dir)]);
    assert_eq!(out.status, 0, "{out:?}");
}
