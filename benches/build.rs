//! Records which aedb source the binary was built from (commit, and whether pager/ had local
//! changes), so a printed table names the code it measured even when the tree moved on since.

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
    for path in ["../pager", "../.git/HEAD", "../.git/refs/heads"] {
        println!("cargo:rerun-if-changed={path}");
    }
    let source = match git(&["rev-parse", "--short", "HEAD"]) {
        Some(commit) => match git(&["status", "--porcelain", "--", "pager"]) {
            Some(changes) if !changes.is_empty() => {
                format!("commit {commit} + uncommitted changes in pager/")
            }
            _ => format!("commit {commit}"),
        },
        None => "unknown commit".to_string(),
    };
    println!("cargo:rustc-env=AEDB_SOURCE={source}");
}
