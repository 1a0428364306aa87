//! The layering rules of docs/ARCHITECTURE.md, checked on the source: the write path (commit,
//! the owners of stored data, the durable core) imports neither the query crate nor the API
//! façade, and the durable core names no tree of the catalog.

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("source folder") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn offending_lines(folders: &[&str], forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    for folder in folders {
        sources(&root.join(folder), &mut files);
    }
    assert!(!files.is_empty(), "no sources found under {root:?}");
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if forbidden.iter().any(|f| code.contains(f)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_write_path_imports_neither_the_query_crate_nor_the_api() {
    let found = offending_lines(
        &["commit", "stored", "durable"],
        &["aedb_query", "crate::api", "crate::query"],
    );
    assert!(
        found.is_empty(),
        "write path reaches up:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_durable_core_names_no_catalog_tree() {
    let found = offending_lines(
        &["durable"],
        &["sys:catalog", "crate::stored", "aedb_catalog"],
    );
    assert!(
        found.is_empty(),
        "durable core knows the catalog:\n{}",
        found.join("\n")
    );
}
