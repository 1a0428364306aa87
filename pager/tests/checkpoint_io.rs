//! A checkpoint writes runs of adjacent dirty pages as one write each, and what it wrote reads
//! back after a reopen.

use std::path::Path;
use std::sync::Arc;

use aedb_pager::io::sim::SimVfs;
use aedb_pager::io::Vfs;
use aedb_pager::{PageStore, StoreConfig};

fn open(vfs: &SimVfs) -> PageStore {
    let vfs: Arc<dyn Vfs> = Arc::new(vfs.clone());
    let config = StoreConfig {
        page_size: 4096,
        buffer_pool_bytes: 8 << 20,
        direct_io: false,
    };
    PageStore::open(vfs, Path::new("/db/data.aedb"), &config).expect("open")
}

#[test]
fn adjacent_dirty_pages_go_out_in_few_writes() {
    let vfs = SimVfs::new();
    let store = open(&vfs);
    let mut txn = store.begin_write().expect("begin");
    for k in 0..20_000u64 {
        txn.insert("t", &k.to_be_bytes(), &[k as u8; 100])
            .expect("insert");
    }
    txn.commit().expect("commit");
    let before = vfs.write_points();
    let info = store.checkpoint().expect("checkpoint");
    let writes = vfs.write_points() - before;
    assert!(info.pages_written > 500, "{} pages", info.pages_written);
    assert!(
        (writes as usize) < info.pages_written / 20,
        "{writes} write points for {} pages: runs were not coalesced",
        info.pages_written
    );
    drop(store);
    let store = open(&vfs);
    let snapshot = store.snapshot();
    for k in (0..20_000u64).step_by(97) {
        assert_eq!(
            snapshot.get("t", &k.to_be_bytes()).expect("get"),
            Some(vec![k as u8; 100])
        );
    }
    assert!(store.check().is_ok());
}
