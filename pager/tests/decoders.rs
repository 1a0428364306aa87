//! Every page decoder meets arbitrary bytes without panicking: it returns a value or a typed
//! error. (Fed both pure noise and valid pages with random bytes overwritten.)

use std::path::Path;
use std::sync::Arc;

use aedb_pager::alloc::{decode_freelist_page, RawFreelistHeader};
use aedb_pager::btree::node::{
    encode_leaf_cell, slot_offset, LeafValue, NodeMut, NodeRef, RawNodeHeader,
};
use aedb_pager::io::sim::SimVfs;
use aedb_pager::io::Vfs;
use aedb_pager::meta::{Meta, RawMeta};
use aedb_pager::overflow::RawOverflowHeader;
use aedb_pager::page::{self, PageType, RawHeader};
use aedb_pager::{PageStore, StoreConfig};
use proptest::prelude::*;

/// Call every accessor of a node view on every index (and one past the end).
fn exercise_node(bytes: &[u8]) {
    let Ok(node) = NodeRef::new(bytes, 5) else {
        return;
    };
    for i in 0..=node.len() {
        let _ = node.cell(i);
        let _ = node.key(i);
        let _ = node.leaf_value(i);
        let _ = node.child(i);
        let _ = node.child_count(i);
    }
    let _ = node.search(b"key");
    let _ = node.child_index(b"key");
    let _ = node.used_bytes();
    let _ = node.used_bytes_fast();
    let _ = node.entry_count();
}

fn valid_leaf() -> Vec<u8> {
    let mut page = vec![0u8; 4096];
    let mut node = NodeMut::init(&mut page, PageType::Leaf, 5, 1);
    for i in 0..40u8 {
        node.insert_cell(
            i as usize,
            &encode_leaf_cell(&[b'k', i], LeafValue::Inline(&[i; 20])),
        );
    }
    page
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn node_decoder_survives_noise(bytes in proptest::collection::vec(any::<u8>(), 0..4200), kind in 2u8..4) {
        let mut bytes = bytes;
        if bytes.len() > 4 {
            bytes[4] = kind; // reach past the type check
        }
        exercise_node(&bytes);
    }

    #[test]
    fn node_decoder_survives_damaged_valid_pages(edits in proptest::collection::vec((0usize..4096, any::<u8>()), 1..16)) {
        let mut page = valid_leaf();
        for (at, byte) in edits {
            page[at] = byte;
        }
        exercise_node(&page);
    }

    #[test]
    fn meta_and_free_list_decoders_survive_noise(bytes in proptest::collection::vec(any::<u8>(), 4096..=4096), slot in 0u64..2) {
        let _ = Meta::decode(&bytes, slot);
        let _ = page::verify(&bytes, slot);
        let mut typed = bytes.clone();
        typed[4] = PageType::FreeList as u8;
        let _ = decode_freelist_page(&typed, 9, 1 << 20);
        // A damaged but checksummed meta page is still checked field by field.
        let mut sealed = bytes;
        sealed[4] = PageType::Meta as u8;
        sealed[8..16].copy_from_slice(&slot.to_le_bytes());
        page::seal(&mut sealed);
        let _ = Meta::decode(&sealed, slot);
    }

    /// The unchecked views the CLI shows damaged pages with, over any bytes, of any length
    /// (shorter than every header included): a value or None, never a panic.
    #[test]
    fn raw_views_survive_noise_of_any_length(bytes in proptest::collection::vec(any::<u8>(), 0..160), slot in any::<usize>()) {
        let header = RawHeader::parse(&bytes);
        prop_assert_eq!(header.is_some(), bytes.len() >= page::PAGE_HEADER_BYTES);
        let _ = RawMeta::parse(&bytes);
        let _ = RawMeta::page_size(&bytes);
        let _ = RawNodeHeader::parse(&bytes).map(|h| h.slots_end());
        let _ = slot_offset(&bytes, slot);
        let _ = slot_offset(&bytes, slot % 32);
        let _ = RawOverflowHeader::parse(&bytes);
        let _ = RawFreelistHeader::parse(&bytes);
        let mut typed = bytes;
        if typed.len() > 4 {
            typed[4] = PageType::FreeList as u8;
        }
        let _ = decode_freelist_page(&typed, 9, 1 << 20);
    }

    /// Whole-store reads over a file with random bytes overwritten (checksums re-sealed, so the
    /// damage reaches the decoders): open, reads, scans and the checker return errors, never panic.
    #[test]
    fn store_reads_over_damaged_pages_never_panic(edits in proptest::collection::vec((2u64..12, 24usize..4096, any::<u8>()), 1..6)) {
        let vfs = SimVfs::new();
        let path = Path::new("/p/data.aedb");
        let config = StoreConfig { page_size: 4096, buffer_pool_bytes: 64 * 4096, direct_io: false };
        {
            let store = PageStore::open(Arc::new(vfs.clone()) as Arc<dyn Vfs>, path, &config).expect("open");
            let mut txn = store.begin_write().expect("begin");
            for i in 0..400u32 {
                let value = vec![i as u8; if i % 97 == 0 { 5000 } else { 30 }];
                txn.insert("t", &i.to_be_bytes(), &value).expect("insert");
            }
            txn.commit().expect("commit");
            store.checkpoint().expect("checkpoint");
        }
        let image = vfs.file_bytes(path).expect("file");
        for (page_id, at, byte) in edits {
            let start = (page_id * 4096) as usize;
            if start + 4096 > image.len() {
                continue;
            }
            let mut page_bytes = image[start..start + 4096].to_vec();
            page_bytes[at] = byte;
            page::seal(&mut page_bytes);
            vfs.corrupt(path, start as u64, &page_bytes);
        }
        if let Ok(store) = PageStore::open(Arc::new(vfs.clone()) as Arc<dyn Vfs>, path, &config) {
            let snapshot = store.snapshot();
            if let Ok(Some(tree)) = snapshot.tree("t") {
                for i in (0..400u32).step_by(13) {
                    let _ = tree.get(&i.to_be_bytes());
                }
                let _ = tree.range(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded, false).take(1000).count();
                let _ = tree.range(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded, true).take(1000).count();
                let _ = tree.count(std::ops::Bound::Included(&5u32.to_be_bytes()[..]), std::ops::Bound::Unbounded);
            }
            let _ = aedb_pager::check::check_file(store.pool(), &store.durable_meta());
            if let Ok(mut txn) = store.begin_write() {
                let _ = txn.insert("t", &7u32.to_be_bytes(), b"x");
                let _ = txn.remove("t", &8u32.to_be_bytes());
            }
        }
    }
}
