//! The README's commands and the page-level commands (`meta`, `pages`, `tree`, `wal`),
//! with their output asserted; dump → restore → parity.

use aedb::AedbInstance;
use serde_json::Value as Json;

use crate::support::{
    aedb, build, config, explorer, field, fingerprint, runtime, s, table_id, USERS,
};

#[test]
fn readme_commands_end_to_end() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    build(&dir);
    let d = s(&dir);
    let dump = tmp.path().join("db.aedbdump");
    let f = s(&dump);

    let out = aedb(&["dump", "export", "--data-dir", d, "--out", f]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.out.lines().next(), Some("ok"), "{out:?}");
    assert_eq!(
        field(&out.out, "tables"),
        format!("2 ({} rows)", USERS + 12)
    );
    assert_eq!(field(&out.out, "kv entries"), "32");
    assert_eq!(field(&out.out, "namespaces"), "2 projects, 3 scopes");
    assert!(dump.is_file());

    let out = aedb(&["dump", "parity", "--dump", f, "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.out.lines().next(), Some("ok"), "{out:?}");
    assert_eq!(field(&out.out, "expected"), field(&out.out, "actual"));
    assert_eq!(field(&out.out, "expected").len(), 64);

    let out = aedb(&["check", "invariants", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.out.lines().next(), Some("ok"), "{out:?}");
    assert_eq!(field(&out.out, "table rows"), (USERS + 12).to_string());
    assert_eq!(field(&out.out, "indexes"), "4");
    assert_eq!(field(&out.out, "kv entries"), "32");
    assert_eq!(field(&out.out, "tables"), "2");

    let out = explorer(&["projects", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    let lines: Vec<&str> = out.out.lines().collect();
    assert!(lines[0].starts_with("PROJECT"), "{out:?}");
    assert!(
        lines[1].starts_with("demo ") && lines[1].contains(" 2 "),
        "{out:?}"
    );
    assert!(lines[2].starts_with("empty"), "{out:?}");

    let out = explorer(&["scopes", "--data-dir", d, "--project", "demo"]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.out, "SCOPE\napp\nextra\n");

    let out = explorer(&[
        "tables",
        "--data-dir",
        d,
        "--project",
        "demo",
        "--scope",
        "app",
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    let users = out.out.lines().nth(1).expect("users line");
    let cells: Vec<&str> = users.split_whitespace().collect();
    assert_eq!(
        cells,
        ["users", "12", "id", "by_name,adults,uniq_balance", "60"],
        "{out:?}"
    );

    let out = explorer(&[
        "describe-table",
        "--data-dir",
        d,
        "--project",
        "demo",
        "--scope",
        "extra",
        "--table",
        "orders",
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(field(&out.out, "primary key"), "user_id, order_no");
    assert_eq!(field(&out.out, "owner"), "ops");
    assert!(
        out.out.contains("by_amount  amount   UniqueHash"),
        "{out:?}"
    );

    let out = explorer(&[
        "scan-table",
        "--data-dir",
        d,
        "--project",
        "demo",
        "--scope",
        "app",
        "--table",
        "users",
        "--limit",
        "5",
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    let lines: Vec<&str> = out.out.lines().collect();
    assert!(lines[0].starts_with("id:Integer  name:Text"), "{out:?}");
    assert_eq!(lines.len(), 1 + 5 + 2, "{out:?}");
    let first: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        &first[..5],
        ["0", "user-000", "0", "1000", "-0.0"],
        "{out:?}"
    );
    assert_eq!(first.last(), Some(&"NULL"), "{out:?}");
    assert!(
        lines[2].ends_with("{\"n\":1}    note\\u{0}1"),
        "control characters escaped: {out:?}"
    );
    assert!(
        lines[6].starts_with("rows_returned=5 rows_examined=5 truncated=true"),
        "{out:?}"
    );
    assert!(lines[7].starts_with("cursor="), "{out:?}");

    let out = explorer(&[
        "scan-kv",
        "--data-dir",
        d,
        "--project",
        "demo",
        "--scope",
        "app",
        "--prefix-hex",
        "757365723a3031",
        "--limit",
        "3",
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(
        out.out
            .lines()
            .nth(1)
            .expect("entry")
            .starts_with("757365723a3031  \"user:01\"  00000001"),
        "{out:?}"
    );
    assert!(
        out.out.contains("entries_returned=1 truncated=false"),
        "{out:?}"
    );

    // Restore into a new directory: the parity of the dump holds there.
    let restored = tmp.path().join("restored");
    let r = s(&restored);
    let out = aedb(&["dump", "restore", "--dump", f, "--data-dir", r]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(out.out.lines().next(), Some("ok"), "{out:?}");
    let out = aedb(&["dump", "parity", "--dump", f, "--data-dir", r]);
    assert_eq!(out.status, 0, "{out:?}");
    let out = aedb(&["check", "invariants", "--data-dir", r]);
    assert_eq!(out.status, 0, "{out:?}");
    for (scope, table) in [("app", "users"), ("extra", "orders")] {
        let args = |dir| {
            vec![
                "--json",
                "scan-table",
                "--data-dir",
                dir,
                "--project",
                "demo",
                "--scope",
                scope,
                "--table",
                table,
                "--limit",
                "1000",
            ]
        };
        let a = explorer(&args(d)).json();
        let b = explorer(&args(r)).json();
        assert_eq!(a["rows"], b["rows"], "{table} differs after restore");
        assert_eq!(
            a["rows_returned"].as_u64(),
            Some(if table == "users" { 60 } else { 12 })
        );
    }
    let kv = |dir| {
        explorer(&[
            "--json",
            "scan-kv",
            "--data-dir",
            dir,
            "--project",
            "demo",
            "--scope",
            "app",
            "--limit",
            "100",
        ])
        .json()
    };
    let (a, b) = (kv(d), kv(r));
    let values = |j: &Json| -> Vec<(Json, Json)> {
        j["entries"]
            .as_array()
            .expect("entries")
            .iter()
            .map(|e| (e["key_hex"].clone(), e["value_hex"].clone()))
            .collect()
    };
    assert_eq!(values(&a), values(&b));
    assert_eq!(values(&a).len(), 31);
    let out = explorer(&[
        "describe-table",
        "--data-dir",
        r,
        "--project",
        "demo",
        "--scope",
        "app",
        "--table",
        "users",
    ]);
    assert!(out.out.contains("unique uniq_balance (balance)"), "{out:?}");
    assert!(out.out.contains("adults        age,seen  BTree"), "{out:?}");

    // A second restore into the now non-empty directory is refused and writes nothing.
    let before = fingerprint(&restored);
    let out = aedb(&["dump", "restore", "--dump", f, "--data-dir", r]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.err.contains("the restore target must be empty"),
        "{out:?}"
    );
    assert_eq!(before, fingerprint(&restored));

    // A database that differs: parity says what.
    let rt = runtime();
    rt.block_on(async {
        let db = AedbInstance::open(config(), &restored).expect("open");
        db.kv_set("demo", "extra", b"k".to_vec(), b"changed".to_vec())
            .await
            .expect("kv");
        db.shutdown().await.expect("shutdown");
    });
    let out = aedb(&["dump", "parity", "--dump", f, "--data-dir", r]);
    assert_eq!(out.status, 1, "{out:?}");
    assert_eq!(out.out.lines().next(), Some("mismatch"), "{out:?}");
    assert!(
        out.out
            .contains("differs: kv demo/extra: same count (1), different content"),
        "{out:?}"
    );
    let json = aedb(&["--json", "dump", "parity", "--dump", f, "--data-dir", r]).json();
    assert_eq!(json["result"], "mismatch");

    // A damaged dump is refused precisely, and restore writes nothing from it.
    let mut bytes = std::fs::read(&dump).expect("dump");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x40;
    let bad = tmp.path().join("bad.aedbdump");
    std::fs::write(&bad, &bytes).expect("write");
    let out = aedb(&["dump", "parity", "--dump", s(&bad), "--data-dir", d]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(out.err.contains("damaged dump: record"), "{out:?}");
    assert!(out.err.contains("checksum mismatch"), "{out:?}");
    let target = tmp.path().join("never");
    let out = aedb(&[
        "dump",
        "restore",
        "--dump",
        s(&bad),
        "--data-dir",
        s(&target),
    ]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(!target.exists());
    std::fs::write(&bad, &bytes[..bytes.len() - 10]).expect("write");
    let out = aedb(&["dump", "parity", "--dump", s(&bad), "--data-dir", d]);
    assert_eq!(out.status, 1, "{out:?}");
}

#[test]
fn page_level_commands() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    build(&dir);
    let d = s(&dir);

    let out = aedb(&["meta", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.out.contains("page size 4096"), "{out:?}");
    let magic: Vec<&str> = field(&out.out, "magic").split_whitespace().collect();
    assert_eq!(magic, ["AEDBDATA", "AEDBDATA"], "{out:?}");
    assert!(out.out.contains("current: page "), "{out:?}");
    assert!(out.out.contains("both meta pages are valid"), "{out:?}");
    let meta = aedb(&["--json", "meta", "--data-dir", d]).json();
    let current = meta["current"].as_u64().expect("current");
    let generation = |slot: u64| {
        meta["slots"][slot as usize]["fields"]["generation"]
            .as_u64()
            .expect("gen")
    };
    assert!(generation(current) > generation(1 - current));

    let out = aedb(&["pages", "stat", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(field(&out.out, "page size"), "4096 bytes");
    assert!(out.out.contains("problems: none"), "{out:?}");
    let stat = aedb(&["--json", "pages", "stat", "--data-dir", d]).json();
    let by_type = &stat["pages_by_type"];
    let total: u64 = [
        "meta",
        "branch",
        "leaf",
        "overflow",
        "free-list",
        "free",
        "leaked",
        "unallocated",
        "unreadable",
    ]
    .iter()
    .map(|k| by_type[*k].as_u64().expect("count"))
    .sum();
    assert_eq!(total, stat["file_pages"].as_u64().expect("file pages"));
    assert_eq!(by_type["meta"], 2);
    assert_eq!(by_type["leaked"], 0);
    assert!(by_type["overflow"].as_u64() > Some(0), "{stat}");
    assert!(
        by_type["free"].as_u64() > Some(0),
        "the dropped table's pages are free: {stat}"
    );
    assert!(stat["freelist"]["ids"].as_u64() > Some(0));

    let users = table_id(&dir, "demo/app/users");
    let out = aedb(&["tree", "list", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(
        out.out
            .lines()
            .any(|l| l.starts_with(&format!("{users} ")) && l.contains("table demo/app/users")),
        "{out:?}"
    );
    assert!(
        out.out.contains("index by_name of demo/app/users"),
        "{out:?}"
    );
    assert!(out.out.contains("KV space demo/app"), "{out:?}");

    let out = aedb(&["tree", "dump", &users, "--data-dir", d, "--keys"]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.out.contains("level 0 (root)"), "{out:?}");
    assert!(out.out.contains("    (59)"), "every key listed: {out:?}");
    let tree = aedb(&["--json", "tree", "dump", &users, "--data-dir", d]).json();
    let levels = tree["levels"].as_array().expect("levels");
    let leaf = levels
        .last()
        .and_then(|l| l[0]["page"].as_u64())
        .expect("leaf");
    let entries: u64 = levels
        .last()
        .expect("leaves")
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["entries"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(entries, USERS as u64);

    let out = aedb(&["pages", "dump", &leaf.to_string(), "--data-dir", d, "--hex"]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(
        field(&out.out, "checksum").starts_with("valid (0x"),
        "{out:?}"
    );
    assert_eq!(field(&out.out, "type"), "3 (leaf)");
    assert_eq!(field(&out.out, "role now"), format!("leaf of tree {users}"));
    assert!(out.out.contains("CELL  OFFSET  KEY"), "{out:?}");
    assert!(out.out.contains("00000000  "), "hex dump: {out:?}");
    let out = aedb(&["pages", "dump", "0", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(field(&out.out, "magic"), "AEDBDATA");
    let out = aedb(&["pages", "dump", "999999", "--data-dir", d]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.err
            .contains("page 999999 is beyond the end of the file"),
        "{out:?}"
    );

    let svg = tmp.path().join("map.svg");
    let out = aedb(&[
        "pages",
        "map",
        "--data-dir",
        d,
        "--svg",
        s(&svg),
        "--width",
        "32",
    ]);
    assert_eq!(out.status, 0, "{out:?}");
    let map_lines: Vec<&str> = out
        .out
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("legend"))
        .collect();
    assert!(map_lines[0].trim_start().starts_with("0  MM"), "{out:?}");
    let image = std::fs::read_to_string(&svg).expect("svg");
    assert!(
        image.starts_with("<svg") && image.contains(&format!("page {leaf}: leaf of {users}")),
        "{image}"
    );

    let out = aedb(&["wal", "dump", "--data-dir", d]);
    assert_eq!(out.status, 0, "{out:?}");
    assert!(out.out.contains("LSN  SEQ  OFFSET"), "{out:?}");
    assert!(
        out.out
            .contains("put    kv:demo:app [KV space demo/app] key \"user:00\""),
        "{out:?}"
    );
    assert!(out.out.contains("end: frames end at offset"), "{out:?}");
    assert!(
        out.out.contains("strict recovery accepts the log"),
        "{out:?}"
    );
    assert!(out.out.contains("damage: none"), "{out:?}");
    let wal = aedb(&["--json", "wal", "dump", "--data-dir", d, "--no-effects"]).json();
    let frames: Vec<&Json> = wal["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .flat_map(|s| s["frames"].as_array().expect("frames"))
        .collect();
    assert!(!frames.is_empty());
    assert!(
        frames
            .iter()
            .all(|f| f["crc"] == "ok" && f["chain"] == "ok"),
        "{wal}"
    );

    for command in [
        vec!["--help"],
        vec!["dump", "export", "--help"],
        vec!["pages", "map", "--help"],
        vec!["wal", "dump", "--help"],
    ] {
        let out = aedb(&command);
        assert_eq!(out.status, 0, "{out:?}");
        assert!(out.out.contains("Example"), "{out:?}");
    }
    let out = explorer(&["scan-table", "--help"]);
    assert!(
        out.out.contains("Example:\n  aedb-explorer scan-table"),
        "{out:?}"
    );
    let out = aedb(&["pages", "stat"]);
    assert_eq!(out.status, 2, "{out:?}");
    assert!(out.err.contains("--data-dir"), "{out:?}");

    // Clear errors naming the path, with a hint.
    let missing = tmp.path().join("nope");
    let out = aedb(&["check", "invariants", "--data-dir", s(&missing)]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.err
            .contains(&format!("error: {}: no such directory", missing.display())),
        "{out:?}"
    );
    assert!(out.err.contains("hint: "), "{out:?}");
    assert!(!missing.exists());
    let out = explorer(&[
        "--json",
        "tables",
        "--data-dir",
        tmp.path().to_str().expect("path"),
        "--project",
        "x",
        "--scope",
        "y",
    ]);
    assert_eq!(out.status, 1, "{out:?}");
    assert!(
        out.json()["error"]
            .as_str()
            .expect("error")
            .contains("data.aedb: not found"),
        "{out:?}"
    );
}

/// A database with events (the engine's own tables in `_system`): a dump holds the user's
/// data only, restores, and matches its parity; the system project is not part of it.
#[test]
fn dumps_leave_the_engines_own_tables_out() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("db");
    runtime().block_on(async {
        let db = AedbInstance::open(config(), &dir).expect("open");
        db.create_project("demo").await.expect("project");
        db.kv_set("demo", "app", b"k".to_vec(), b"v".to_vec())
            .await
            .expect("kv");
        db.emit_event("demo", "app", "t", "e1".into(), "{}".into())
            .await
            .expect("event");
        db.ack_reactive_processor_checkpoint("proc", 1)
            .await
            .expect("ack");
        db.shutdown().await.expect("shutdown");
    });
    let dump = tmp.path().join("db.aedbdump");
    let restored = tmp.path().join("restored");
    let (d, f, r) = (s(&dir), s(&dump), s(&restored));
    let out = aedb(&["dump", "export", "--data-dir", d, "--out", f]);
    assert_eq!(out.status, 0, "{out:?}");
    assert_eq!(field(&out.out, "namespaces"), "1 projects, 1 scopes");
    let out = aedb(&["dump", "restore", "--dump", f, "--data-dir", r]);
    assert_eq!(out.status, 0, "{out:?}");
    let out = aedb(&["dump", "parity", "--dump", f, "--data-dir", r]);
    assert_eq!(out.status, 0, "{out:?}");
    let out = aedb(&["dump", "parity", "--dump", f, "--data-dir", d]);
    assert_eq!(out.status, 0, "the source matches too: {out:?}");
}
