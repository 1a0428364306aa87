//! Records which aedb source the binary was built from (commit, and which of the crates it
//! links had local changes), so a printed table names the code it measured even when the tree
//! moved on since.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg("..")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    const CRATES: [&str; 5] = ["pager", "wal", "catalog", "query", "engine"];
    for path in [
        "../pager",
        "../wal",
        "../catalog",
        "../query",
        "../engine",
        "../.git/HEAD",
        "../.git/refs/heads",
    ] {
        println!("cargo:rerun-if-changed={path}");
    }
    let source = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) => {
            let changed: Vec<String> = CRATES
                .iter()
                .filter(|dir| {
                    git(&["status", "--porcelain", "--", dir])
                        .is_some_and(|changes| !changes.is_empty())
                })
                .map(|dir| format!("{dir}/"))
                .collect();
            if changed.is_empty() {
                format!("commit {commit}")
            } else {
                format!(
                    "commit {commit} + uncommitted changes in {}",
                    changed.join(", ")
                )
            }
        }
        None => "unknown commit".to_string(),
    };
    println!("cargo:rustc-env=AEDB_SOURCE={source}");
}
