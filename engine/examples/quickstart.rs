//! Open a database, write, query, reopen and query again — at the storage level.
//!
//! Run: `cargo run --release -p aedb --example quickstart [DATA_DIR]`

use std::ops::Bound;
use std::path::PathBuf;

use aedb::storage::io::{os_vfs, IoBackendChoice};
use aedb::storage::{PageStore, StoreConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let path = dir.join("data.aedb");
    let config = StoreConfig {
        buffer_pool_bytes: 8 << 20,
        ..StoreConfig::default()
    };

    let store = PageStore::open(os_vfs(IoBackendChoice::Auto)?, &path, &config)?;
    println!(
        "opened {} with the {} backend",
        path.display(),
        store.backend()
    );

    // One atomic write transaction: 10,000 users, then make it durable.
    let mut txn = store.begin_write()?;
    for id in 0..10_000u32 {
        let name = format!("user-{id:05}");
        txn.insert("users", &id.to_be_bytes(), name.as_bytes())?;
    }
    let seq = txn.commit()?;
    store.checkpoint()?;
    println!("committed version {seq} and made it durable");

    // Query: a point read and a range.
    let snapshot = store.snapshot();
    let users = snapshot.tree("users")?.ok_or("users tree missing")?;
    let alice = users.get(&42u32.to_be_bytes())?;
    println!(
        "user 42 = {:?}",
        alice.as_deref().map(String::from_utf8_lossy)
    );
    let range: Vec<String> = users
        .range(
            Bound::Included(&100u32.to_be_bytes()[..]),
            Bound::Excluded(&105u32.to_be_bytes()[..]),
            false,
        )
        .map(|item| item.map(|(_, v)| String::from_utf8_lossy(&v).into_owned()))
        .collect::<Result<_, _>>()?;
    println!("users 100..105 = {range:?}");
    drop((snapshot, users));
    drop(store);

    // Reopen and check that everything is still there.
    let store = PageStore::open(os_vfs(IoBackendChoice::Auto)?, &path, &config)?;
    let users = store
        .snapshot()
        .tree("users")?
        .ok_or("users tree missing after reopen")?;
    assert_eq!(users.len(), 10_000);
    assert_eq!(
        users.get(&42u32.to_be_bytes())?.as_deref(),
        Some(&b"user-00042"[..])
    );
    let report = store.check();
    println!(
        "reopened: {} users, invariant check {} ({} pages in use, {} free)",
        users.len(),
        if report.is_ok() { "ok" } else { "FAILED" },
        report.reachable_pages,
        report.free_pages
    );
    if !report.is_ok() {
        return Err(format!("invariant violations: {:?}", report.violations).into());
    }
    Ok(())
}
