//! `AedbInstance::open_with_vfs`: the whole API on the simulated disk. Every file of the
//! database goes through the given file system (nothing reaches the OS's), a power loss keeps
//! exactly the acknowledged commits, and the instance recovers from the crash image.

use std::path::Path;
use std::sync::Arc;

use aedb::config::{AedbConfig, DurabilityMode};
use aedb::query::plan::ConsistencyMode::AtLatest;
use aedb::storage::io::sim::{CrashMode, SimVfs};
use aedb::storage::io::{BackendKind, Vfs};
use aedb::{AedbError, AedbInstance};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// A directory that does not exist on the OS's file system.
const DIR: &str = "/aedb-simulated-only/db";

fn open(vfs: &SimVfs) -> Result<AedbInstance, AedbError> {
    let config = AedbConfig {
        durability_mode: DurabilityMode::Full,
        // No HMAC key: the instance makes a cursor key file, on the same disk.
        hmac_key: None,
        ..AedbConfig::default()
    };
    AedbInstance::open_with_vfs(
        config,
        Path::new(DIR),
        Arc::new(vfs.clone()) as Arc<dyn Vfs>,
    )
}

#[tokio::test]
async fn an_instance_on_the_simulated_disk_recovers_from_a_power_loss() -> TestResult {
    let vfs = SimVfs::new();
    let db = open(&vfs)?;
    assert_eq!(db.engine().backend(), BackendKind::Simulated);
    assert!(
        db.engine().lock_path().is_none(),
        "no lock on the simulator"
    );
    db.create_project("p").await?;
    db.create_scope("p", "s").await?;
    db.kv_set("p", "s", b"k".to_vec(), b"v1".to_vec()).await?;
    let emitted = db
        .emit_event("p", "s", "t", "e1".into(), "{\"n\":1}".into())
        .await?;
    assert!(emitted.durable_head_seq >= emitted.commit_seq);
    let key_file = Path::new(DIR).join("CURSOR_KEY");
    let key = vfs
        .file_bytes(&key_file)
        .expect("the cursor key is on the simulated disk");
    assert_eq!(key.len(), 32);
    assert!(
        !Path::new(DIR).exists(),
        "nothing was written to the OS's file system"
    );
    // A commit the disk never completes: the image keeps what was acknowledged before it.
    vfs.crash_now();
    assert!(db
        .kv_set("p", "s", b"k".to_vec(), b"v2".to_vec())
        .await
        .is_err());
    drop(db);

    let image = vfs.crash_image(CrashMode::PowerLoss, 7);
    let db = open(&image)?;
    assert!(
        db.engine().recovery_report().frames_replayed > 0,
        "the log was redone"
    );
    // The replayed commits count as durable once the checkpoint after redo is written.
    assert!(db.engine().recovery_report().checkpointed_after_redo);
    db.wait_for_recovery_checkpoint()?;
    assert_eq!(
        db.engine().durable_head_seq(),
        db.engine().visible_head_seq()
    );
    let entry = db.kv_get_no_auth("p", "s", b"k", AtLatest).await?;
    assert_eq!(entry.map(|e| e.value), Some(b"v1".to_vec()));
    let page = db.read_event_stream(None, 0, 10, AtLatest).await?;
    assert_eq!(page.events.len(), 1);
    assert_eq!(
        (page.events[0].commit_seq, page.events[0].event_key.as_str()),
        (emitted.commit_seq, "e1")
    );
    assert_eq!(
        image.file_bytes(&key_file),
        Some(key),
        "the same cursor key"
    );
    // It takes commits again, and shuts down cleanly on the simulated disk.
    db.kv_set("p", "s", b"k".to_vec(), b"v3".to_vec()).await?;
    db.shutdown().await?;
    let db = open(&image)?;
    assert_eq!(db.engine().recovery_report().frames_replayed, 0);
    let entry = db.kv_get_no_auth("p", "s", b"k", AtLatest).await?;
    assert_eq!(entry.map(|e| e.value), Some(b"v3".to_vec()));
    Ok(())
}
