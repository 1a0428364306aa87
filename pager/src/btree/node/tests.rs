//! Node layout tests: inserts, removals, searches and heads against simple models.

use super::*;

#[test]
fn leaf_insert_search_remove() {
    let mut page = vec![0u8; 4096];
    let mut node = NodeMut::init(&mut page, PageType::Leaf, 9, 1);
    let keys: Vec<Vec<u8>> = (0..50u32)
        .map(|i| format!("key{:04}", i * 2).into_bytes())
        .collect();
    for (n, key) in keys.iter().enumerate() {
        assert!(node.insert_cell(n, &encode_leaf_cell(key, LeafValue::Inline(b"v"))));
    }
    let view = NodeRef::new(&page, 9).unwrap();
    assert_eq!(view.len(), 50);
    assert_eq!(view.search(b"key0010").unwrap(), Ok(5));
    assert_eq!(view.search(b"key0011").unwrap(), Err(6));
    assert_eq!(view.leaf_value(5).unwrap(), LeafValue::Inline(b"v"));
    let len = view.cell(5).unwrap().len();
    let mut node = NodeMut::wrap(&mut page);
    node.remove_cell(5, len);
    let view = NodeRef::new(&page, 9).unwrap();
    assert_eq!(view.len(), 49);
    assert_eq!(view.search(b"key0010").unwrap(), Err(5));
}

#[test]
fn raw_header_and_slots_read_what_the_writer_wrote() {
    let mut page = vec![0u8; 4096];
    let mut node = NodeMut::init(&mut page, PageType::Leaf, 9, 1);
    for n in 0..6u8 {
        let key = [b'p', b'q', n];
        assert!(node.insert_cell(
            n as usize,
            &encode_leaf_cell(&key, LeafValue::Inline(b"vv"))
        ));
    }
    node.refresh_head_offset();
    node.remove_cell(2, LEAF_CELL_OVERHEAD + 3 + 2);
    let raw = RawNodeHeader::parse(&page).unwrap();
    let view = NodeRef::new(&page, 9).unwrap();
    assert_eq!(raw.count as usize, view.len());
    assert_eq!(raw.head_offset as usize, view.head_offset());
    assert_eq!(raw.slots_end(), slot_at(5));
    assert_eq!(raw.fragmented as usize, LEAF_CELL_OVERHEAD + 3 + 2);
    let gap = raw.cell_start as usize - raw.slots_end();
    assert_eq!(
        view.used_bytes_fast(),
        usable_bytes(4096) - gap - raw.fragmented as usize
    );
    for i in 0..view.len() {
        let off = slot_offset(&page, i).unwrap() as usize;
        assert_eq!(
            Ok(&page[off..off + view.cell(i).unwrap().len()]),
            view.cell(i)
        );
    }
    // Unchecked: a count the page cannot hold still reads; short buffers give None.
    write_u16(&mut page, COUNT_AT, u16::MAX);
    assert!(NodeRef::new(&page, 9).is_err());
    assert_eq!(RawNodeHeader::parse(&page).map(|h| h.count), Some(u16::MAX));
    assert_eq!(slot_offset(&page, u16::MAX as usize), None);
    assert_eq!(slot_offset(&page, usize::MAX), None);
    for len in 0..NODE_HEADER_BYTES {
        assert_eq!(RawNodeHeader::parse(&page[..len]), None, "{len} bytes");
        assert_eq!(slot_offset(&page[..len], 0), None);
    }
    assert!(RawNodeHeader::parse(&page[..NODE_HEADER_BYTES]).is_some());
}

#[test]
fn fragmented_space_is_reused_by_compaction() {
    let mut page = vec![0u8; 4096];
    let mut node = NodeMut::init(&mut page, PageType::Leaf, 3, 1);
    let value = vec![7u8; 200];
    let mut n = 0;
    while node.insert_cell(
        n,
        &encode_leaf_cell(format!("k{n:03}").as_bytes(), LeafValue::Inline(&value)),
    ) {
        n += 1;
    }
    assert!(n >= 15);
    let cell_len = LEAF_CELL_OVERHEAD + 4 + 200;
    // Remove every other cell from the front half; then a cell as large fits again.
    node.remove_cell(0, cell_len);
    node.remove_cell(3, cell_len);
    assert!(node.insert_cell(0, &encode_leaf_cell(b"a000", LeafValue::Inline(&value))));
    let view = NodeRef::new(&page, 3).unwrap();
    assert_eq!(view.key(0).unwrap(), b"a000");
    assert_eq!(view.len(), n - 1);
}

#[test]
fn branch_child_index() {
    let mut page = vec![0u8; 4096];
    let mut node = NodeMut::init(&mut page, PageType::Branch, 4, 1);
    node.insert_cell(0, &encode_branch_cell(b"", 10, 3));
    node.insert_cell(1, &encode_branch_cell(b"m", 11, 4));
    node.insert_cell(2, &encode_branch_cell(b"t", 12, 5));
    let view = NodeRef::new(&page, 4).unwrap();
    assert_eq!(view.child_index(b"a").unwrap(), 0);
    assert_eq!(view.child_index(b"m").unwrap(), 1);
    assert_eq!(view.child_index(b"s").unwrap(), 1);
    assert_eq!(view.child_index(b"z").unwrap(), 2);
    assert_eq!(view.child(2).unwrap(), 12);
    assert_eq!(view.entry_count().unwrap(), 12);
}

/// Keys sharing a long prefix, like encoded integers.
fn int_key(i: u64) -> Vec<u8> {
    let mut key = vec![4u8];
    key.extend_from_slice(&(i ^ (1 << 63)).to_be_bytes());
    key
}

#[test]
fn heads_follow_the_common_prefix_and_searches_stay_exact() {
    let mut page = vec![0u8; 8192];
    let mut node = NodeMut::init(&mut page, PageType::Leaf, 5, 1);
    for (n, i) in (1000..1100u64).step_by(2).enumerate() {
        assert!(node.insert_cell(n, &encode_leaf_cell(&int_key(i), LeafValue::Inline(b"v"))));
    }
    node.refresh_head_offset();
    let view = NodeRef::new(&page, 5).unwrap();
    assert_eq!(
        view.head_offset(),
        7,
        "tag, then six equal bytes of the biased integer"
    );
    view.verify_heads().unwrap();
    assert_eq!(view.search(&int_key(1000)).unwrap(), Ok(0));
    assert_eq!(view.search(&int_key(1098)).unwrap(), Ok(49));
    assert_eq!(view.search(&int_key(1001)).unwrap(), Err(1));
    assert_eq!(
        view.search(&int_key(5)).unwrap(),
        Err(0),
        "below the prefix"
    );
    assert_eq!(
        view.search(&int_key(1 << 40)).unwrap(),
        Err(50),
        "above the prefix"
    );
    assert_eq!(
        view.search(&[4u8, 0x80]).unwrap(),
        Err(0),
        "a probe shorter than the prefix"
    );
    assert_eq!(view.search(&[4u8, 0x81]).unwrap(), Err(50));
    assert_eq!(view.search(b"").unwrap(), Err(0));
    // A key outside the prefix shortens it; every head is rewritten.
    let mut node = NodeMut::wrap(&mut page);
    assert!(node.insert_cell(
        50,
        &encode_leaf_cell(&int_key(1 << 40), LeafValue::Inline(b"w"))
    ));
    let view = NodeRef::new(&page, 5).unwrap();
    assert_eq!(view.head_offset(), 3);
    view.verify_heads().unwrap();
    assert_eq!(view.search(&int_key(1 << 40)).unwrap(), Ok(50));
    assert_eq!(view.search(&int_key(1050)).unwrap(), Ok(25));
}

#[test]
fn branch_heads_skip_the_first_cell() {
    let mut page = vec![0u8; 4096];
    let mut node = NodeMut::init(&mut page, PageType::Branch, 4, 1);
    node.insert_cell(0, &encode_branch_cell(b"", 10, 3));
    node.insert_cell(1, &encode_branch_cell(b"user:0100", 11, 4));
    node.insert_cell(2, &encode_branch_cell(b"user:0200", 12, 5));
    node.refresh_head_offset();
    let view = NodeRef::new(&page, 4).unwrap();
    assert_eq!(view.head_offset(), 6);
    view.verify_heads().unwrap();
    assert_eq!(view.child_index(b"a").unwrap(), 0);
    assert_eq!(view.child_index(b"user:").unwrap(), 0);
    assert_eq!(view.child_index(b"user:0099").unwrap(), 0);
    assert_eq!(view.child_index(b"user:0100").unwrap(), 1);
    assert_eq!(view.child_index(b"user:0150").unwrap(), 1);
    assert_eq!(view.child_index(b"user:0200").unwrap(), 2);
    assert_eq!(view.child_index(b"zzz").unwrap(), 2);
}

proptest::proptest! {
    #[test]
    fn search_matches_a_sorted_model_whatever_the_prefixes(
        first in proptest::collection::btree_set(
            (0u8..3, proptest::collection::vec(0u8..4, 0..6)), 1..40),
        more in proptest::collection::vec(
            (0u8..3, proptest::collection::vec(0u8..4, 0..6)), 0..20),
        probes in proptest::collection::vec(proptest::collection::vec(0u8..4, 0..9), 0..30),
    ) {
        // Keys "pp" + a small tag + a tail: long shared prefixes, some broken later.
        let make = |(tag, tail): &(u8, Vec<u8>)| [&b"pp"[..], &[*tag], tail].concat();
        let mut model: Vec<Vec<u8>> = first.iter().map(make).collect();
        model.sort();
        model.dedup();
        let mut page = vec![0u8; 8192];
        let mut node = NodeMut::init(&mut page, PageType::Leaf, 1, 1);
        for (n, key) in model.iter().enumerate() {
            proptest::prop_assert!(node.insert_cell(n, &encode_leaf_cell(key, LeafValue::Inline(b""))));
        }
        node.refresh_head_offset();
        for key in more.iter().map(make) {
            if let Err(at) = model.binary_search(&key) {
                let mut node = NodeMut::wrap(&mut page);
                proptest::prop_assert!(node.insert_cell(at, &encode_leaf_cell(&key, LeafValue::Inline(b""))));
                model.insert(at, key);
            }
        }
        let view = NodeRef::new(&page, 1).unwrap();
        proptest::prop_assert!(view.verify_heads().is_ok());
        for probe in probes.iter().map(|p| [&b"pp"[..p.len().min(2)], p].concat()).chain(model.clone()) {
            proptest::prop_assert_eq!(view.search(&probe).unwrap(), model.binary_search(&probe));
        }
    }
}

/// A damaged node whose slots all point at one large cell promises room (its fragmented count)
/// that compaction cannot make: re-laying the copies of the cell would run over the slots and
/// past the page's start. The insert is refused and the page left as it was, its head offset
/// too (the new key "qq" does not share the node's prefix "pp").
#[test]
fn compaction_refuses_cells_that_cannot_fit_and_the_insert_fails_cleanly() {
    let mut page = vec![0u8; 4096];
    let mut node = NodeMut::init(&mut page, PageType::Leaf, 3, 1);
    assert!(node.insert_cell(0, &encode_leaf_cell(b"ppa", LeafValue::Inline(&[7u8; 990]))));
    assert!(node.insert_cell(1, &encode_leaf_cell(b"ppb", LeafValue::Inline(&[7u8; 10]))));
    node.refresh_head_offset();
    assert_eq!(NodeRef::new(&page, 3).expect("node").head_offset(), 2);
    let cell_at = slot_offset(&page, 0).expect("slot 0");
    for i in 2..6 {
        let slot = 40 + i * SLOT_BYTES;
        page[slot..slot + 2].copy_from_slice(&cell_at.to_le_bytes());
    }
    page[24..26].copy_from_slice(&6u16.to_le_bytes()); // count
    page[28..32].copy_from_slice(&100u32.to_le_bytes()); // cell start: a gap of 4 bytes
    page[32..36].copy_from_slice(&3000u32.to_le_bytes()); // fragmented: "room"
    let before = page.clone();
    let mut node = NodeMut::wrap(&mut page);
    assert!(node.free_bytes() > 100);
    assert!(!node.insert_cell(6, &encode_leaf_cell(b"qq", LeafValue::Inline(&[1u8; 40]))));
    assert!(page == before, "a refused insert changed the page");
}
