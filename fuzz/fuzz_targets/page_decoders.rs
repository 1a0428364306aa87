//! Page decoders on arbitrary bytes: node views, meta pages, free-list pages.
#![no_main]

use aedb_pager::btree::node::NodeRef;
use aedb_pager::meta::Meta;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(node) = NodeRef::new(data, 2) {
        for i in 0..=node.len() {
            let _ = node.key(i);
            let _ = node.leaf_value(i);
            let _ = node.child(i);
            let _ = node.child_count(i);
        }
        let _ = node.search(b"k");
        let _ = node.child_index(b"k");
        let _ = node.used_bytes();
    }
    if data.len() >= 4096 {
        let _ = Meta::decode(&data[..4096], 0);
        let _ = aedb_pager::alloc::decode_freelist_page(&data[..4096], 3, 1 << 30);
    }
});
