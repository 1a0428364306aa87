//! Golden bytes of every encoding the catalog crate owns: the tags of value kinds, keys
//! (memcomparable tuples), rows, catalog keys and tree names (docs/FORMAT.md, "Tables, indexes,
//! KV and the catalog"), and catalog entries (postcard 1.x applied to the declared field and
//! variant order of the serde types: strings and sequences are a LEB128 length then the items,
//! `Option` a 0/1 byte then the value, `u32`/`u64` LEB128, `i64` zigzag then LEB128, `u8` and
//! `bool` one byte, `f64` 8 bytes little-endian, an array its items, an enum its variant index
//! (LEB128) then its fields).
//!
//! Every expected byte is a literal written from those specifications, not from the code. A
//! failure means files written before the change no longer read the same: change the format
//! deliberately (and docs/FORMAT.md), never a literal to fit the code.
//!
//! Struct values are built with field names and every field of a type holds a value distinct
//! from its siblings, so renaming a field fails to compile and reordering fields, or reordering
//! any enum's variants, changes the bytes.

use aedb_catalog::expr::Expr;
use aedb_catalog::keys::{decode_key, decode_prefix, encode_key};
use aedb_catalog::namespace::{
    decode_entry, encode_entry, index_tree, kv_tree, project_key, scope_key, scope_prefix,
    table_key, table_prefix, table_tree, table_tree_name, ProjectEntry, ScopeEntry, CATALOG_TREE,
    NEXT_TABLE_ID_KEY,
};
use aedb_catalog::rows::{
    decode_row, decode_row_versioned, encode_row, encode_row_at, row_version, UNVERSIONED,
};
use aedb_catalog::schema::{ColumnDef, Constraint, IndexDef, IndexType, TableSchema};
use aedb_catalog::types::{tag, ColumnType, Row, Value};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A U256 whose first byte would betray a sign flip: 0x80, 30 zeros, 0x01.
fn u256() -> [u8; 32] {
    let mut v = [0u8; 32];
    v[0] = 0x80;
    v[31] = 0x01;
    v
}

/// I256 +1 and −2 (big-endian two's complement).
fn i256_plus_one() -> [u8; 32] {
    let mut v = [0u8; 32];
    v[31] = 0x01;
    v
}

fn i256_minus_two() -> [u8; 32] {
    let mut v = [0xffu8; 32];
    v[31] = 0xfe;
    v
}

/// `encode_entry(value)` is `golden`, and `golden` decodes to `value`.
fn assert_entry<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T, golden: &[u8]) {
    assert_eq!(encode_entry(value), golden, "encoding of {value:?}");
    let decoded: T = decode_entry(golden).unwrap();
    assert_eq!(&decoded, value, "decoding of {golden:02x?}");
}

// ---------------------------------------------------------------------------------------------
// Value tags (FORMAT.md "Key encoding": the tag column)

#[test]
fn value_tags() {
    let tags = [
        (tag::NULL, Value::Null, 0),
        (tag::BOOLEAN, Value::Boolean(false), 1),
        (tag::U8, Value::U8(0), 2),
        (tag::U64, Value::U64(0), 3),
        (tag::INTEGER, Value::Integer(0), 4),
        (tag::U256, Value::U256([0; 32]), 5),
        (tag::I256, Value::I256([0; 32]), 6),
        (tag::TIMESTAMP, Value::Timestamp(0), 7),
        (tag::FLOAT, Value::Float(0.0), 8),
        (tag::TEXT, Value::Text(String::new()), 9),
        (tag::JSON, Value::Json(String::new()), 10),
        (tag::BLOB, Value::Blob(Vec::new()), 11),
    ];
    for (constant, value, golden) in tags {
        assert_eq!(constant, golden, "tag constant of {value:?}");
        assert_eq!(value.tag(), golden, "tag of {value:?}");
        assert_eq!(value.kind_rank(), golden, "rank of {value:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Keys (FORMAT.md "Key encoding (order-preserving)")

fn key_cases() -> Vec<(Value, Vec<u8>)> {
    vec![
        (Value::Null, vec![0x00]),
        (Value::Boolean(false), vec![0x01, 0x00]),
        (Value::Boolean(true), vec![0x01, 0x01]),
        (Value::U8(0xab), vec![0x02, 0xab]),
        (
            Value::U64(0x0102_0304_0506_0708),
            vec![0x03, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
        ),
        (
            Value::Integer(i64::MIN),
            vec![0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
        ),
        (
            Value::Integer(-1),
            vec![0x04, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            Value::Integer(1),
            vec![0x04, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01],
        ),
        (
            Value::Integer(i64::MAX),
            vec![0x04, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            Value::U256(u256()),
            cat(&[&[0x05, 0x80], &[0x00; 30], &[0x01]]),
        ),
        (
            Value::I256(i256_minus_two()),
            cat(&[&[0x06, 0x7f], &[0xff; 30], &[0xfe]]),
        ),
        (
            Value::I256(i256_plus_one()),
            cat(&[&[0x06, 0x80], &[0x00; 30], &[0x01]]),
        ),
        (
            Value::Timestamp(-2),
            vec![0x07, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
        ),
        (
            Value::Timestamp(0x0102_0304_0506_0708),
            vec![0x07, 0x81, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
        ),
        // Negative: every bit flipped. Positive: the sign bit set.
        (
            Value::Float(-1.5),
            vec![0x08, 0x40, 0x07, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            Value::Float(-0.0),
            vec![0x08, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            Value::Float(0.0),
            vec![0x08, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
        ),
        (
            Value::Float(1.5),
            vec![0x08, 0xbf, 0xf8, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
        ),
        // Bytes with 0x00 written as 0x00 0xFF, then the terminator 0x00 0x00.
        (Value::Text(String::new()), vec![0x09, 0x00, 0x00]),
        (
            Value::Text("a\0b".into()),
            vec![0x09, b'a', 0x00, 0xff, b'b', 0x00, 0x00],
        ),
        (Value::Text("é".into()), vec![0x09, 0xc3, 0xa9, 0x00, 0x00]),
        (Value::Json("{}".into()), vec![0x0a, b'{', b'}', 0x00, 0x00]),
        (Value::Blob(Vec::new()), vec![0x0b, 0x00, 0x00]),
        (
            Value::Blob(vec![0x00, 0xff, 0x01]),
            vec![0x0b, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00],
        ),
    ]
}

#[test]
fn key_of_each_kind() {
    let cases = key_cases();
    for (value, golden) in &cases {
        let one = std::slice::from_ref(value);
        assert_eq!(&encode_key(one), golden, "key of {value:?}");
        assert_eq!(decode_key(golden).unwrap(), one, "decoding {golden:02x?}");
    }
    // The cases are listed in the order of the values; their bytes are in the same order.
    for pair in cases.windows(2) {
        assert!(pair[0].0 < pair[1].0, "{:?} < {:?}", pair[0].0, pair[1].0);
        assert!(pair[0].1 < pair[1].1, "bytes of {:?}", pair[1].0);
    }
}

#[test]
fn composite_keys() {
    // A primary key of three columns.
    let pk = vec![Value::Integer(7), Value::Text("ab".into()), Value::Null];
    let golden: &[u8] = &[
        0x04, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, // Integer 7
        0x09, b'a', b'b', 0x00, 0x00, // Text "ab"
        0x00, // Null
    ];
    assert_eq!(encode_key(&pk), golden);
    assert_eq!(decode_key(golden).unwrap(), pk);

    // An index key: the index columns, then the primary key.
    let index_columns = vec![Value::Text("x".into()), Value::Boolean(true)];
    let primary_key = vec![Value::U64(1)];
    let golden: &[u8] = &[
        0x09, b'x', 0x00, 0x00, // Text "x"
        0x01, 0x01, // Boolean true
        0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, // U64 1
    ];
    let all = [index_columns.clone(), primary_key.clone()].concat();
    assert_eq!(encode_key(&all), golden);
    assert_eq!(
        decode_prefix(golden, 2).unwrap(),
        (index_columns, 6),
        "the index columns take the first 6 bytes"
    );
    assert_eq!(decode_key(&golden[6..]).unwrap(), primary_key);
}

// ---------------------------------------------------------------------------------------------
// Rows (FORMAT.md "Row encoding")

/// One value of every kind, in `ColumnType` order, then Null.
fn every_kind_row() -> Row {
    Row::from_values(vec![
        Value::Text("hi".into()),
        Value::U8(7),
        Value::U64(0x0102_0304_0506_0708),
        Value::Integer(-2),
        Value::Float(1.5),
        Value::Boolean(true),
        Value::U256(u256()),
        Value::I256(i256_minus_two()),
        Value::Blob(vec![0x00, 0x01]),
        Value::Timestamp(1),
        Value::Json("{}".into()),
        Value::Null,
    ])
}

/// The values of [`every_kind_row`] as stored (after the header).
fn every_kind_values() -> Vec<u8> {
    cat(&[
        &[0x0c], // 12 values
        &[0x09, 0x02, b'h', b'i'],
        &[0x02, 0x07],
        &[0x03, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01],
        &[0x04, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        &[0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f],
        &[0x01, 0x01],
        &[0x05, 0x80],
        &[0x00; 30],
        &[0x01],
        &[0x06],
        &[0xff; 31],
        &[0xfe],
        &[0x0b, 0x02, 0x00, 0x01],
        &[0x07, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
        &[0x0a, 0x02, b'{', b'}'],
        &[0x00],
    ])
}

#[test]
fn row_format_1_every_kind() {
    let row = every_kind_row();
    let golden = cat(&[&[0x01], &every_kind_values()]);
    assert_eq!(encode_row(&row), golden);
    assert_eq!(decode_row_versioned(&golden).unwrap(), (row, UNVERSIONED));
    assert_eq!(UNVERSIONED, 1);
    assert_eq!(encode_row(&Row::default()), [0x01, 0x00]);
}

#[test]
fn row_format_2_every_kind() {
    let row = every_kind_row();
    // Version 300 = LEB128 0xac 0x02.
    let golden = cat(&[&[0x02, 0xac, 0x02], &every_kind_values()]);
    assert_eq!(encode_row_at(&row, 300), golden);
    assert_eq!(decode_row_versioned(&golden).unwrap(), (row, 300));
    assert_eq!(row_version(&golden).unwrap(), 300);

    // The longest version: ten LEB128 bytes.
    let golden = [
        0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00,
    ];
    assert_eq!(encode_row_at(&Row::default(), u64::MAX), golden);
    assert_eq!(row_version(&golden).unwrap(), u64::MAX);
}

#[test]
fn row_lengths_are_leb128() {
    // 130 bytes of text: length 0x82 0x01.
    let row = Row::from_values(vec![Value::Text("x".repeat(130))]);
    let golden = cat(&[&[0x02, 0x05, 0x01, 0x09, 0x82, 0x01], &[b'x'; 130]]);
    assert_eq!(encode_row_at(&row, 5), golden);
    assert_eq!(decode_row(&golden).unwrap(), row);
}

fn column(name: &str, col_type: ColumnType, nullable: bool) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        col_type,
        nullable,
    }
}

#[test]
fn rows_are_stored_by_slot() {
    // Version 1 of a table: id Integer, name Text, in slots 0 and 1.
    let v1 = TableSchema {
        project_id: "p".into(),
        scope_id: "s".into(),
        table_name: "t".into(),
        owner_id: None,
        columns: vec![
            column("id", ColumnType::Integer, false),
            column("name", ColumnType::Text, true),
        ],
        primary_key: vec!["id".into()],
        constraints: vec![],
        indexes: vec![],
        table_id: 1,
        slots: vec![0, 1],
        slot_count: 2,
    };
    let old_row = Row::from_values(vec![Value::Integer(1), Value::Text("a".into())]);
    let old_golden: &[u8] = &[
        0x02, 0x05, // format 2, version 5
        0x02, // 2 values
        0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // slot 0: Integer 1
        0x09, 0x01, b'a', // slot 1: Text "a"
    ];
    assert_eq!(encode_row_at(&v1.to_stored(&old_row), 5), old_golden);

    // Version 2: `name` dropped (slot 1 retired), `score` U64 default 10 added in slot 2.
    let v2 = TableSchema {
        columns: vec![
            column("id", ColumnType::Integer, false),
            column("score", ColumnType::U64, true),
        ],
        constraints: vec![Constraint::Default {
            column: "score".into(),
            value: Value::U64(10),
        }],
        slots: vec![0, 2],
        slot_count: 3,
        ..v1
    };
    // The row written under version 1 reads with the default for the new column.
    let (stored, version) = decode_row_versioned(old_golden).unwrap();
    assert_eq!(version, 5);
    assert_eq!(
        v2.from_stored(stored),
        Row::from_values(vec![Value::Integer(1), Value::U64(10)])
    );

    // A row written under version 2 holds Null in the retired slot.
    let new_row = Row::from_values(vec![Value::Integer(2), Value::U64(3)]);
    let new_golden: &[u8] = &[
        0x02, 0x06, // format 2, version 6
        0x03, // 3 values
        0x04, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // slot 0: Integer 2
        0x00, // slot 1 (retired): Null
        0x03, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // slot 2: U64 3
    ];
    assert_eq!(encode_row_at(&v2.to_stored(&new_row), 6), new_golden);
    assert_eq!(v2.from_stored(decode_row(new_golden).unwrap()), new_row);
}

// ---------------------------------------------------------------------------------------------
// Catalog keys and tree names (FORMAT.md "Tables, indexes, KV and the catalog")

#[test]
fn catalog_keys_and_tree_names() {
    assert_eq!(project_key("p1"), b"P\0p1");
    assert_eq!(scope_key("p1", "s1"), b"S\0p1\0s1");
    assert_eq!(scope_prefix("p1"), b"S\0p1\0");
    assert_eq!(table_key("p1", "s1", "t1"), b"T\0p1\0s1\0t1");
    assert_eq!(table_prefix("p1", "s1"), b"T\0p1\0s1\0");
    assert_eq!(NEXT_TABLE_ID_KEY, b"N\0next_table_id");

    assert_eq!(CATALOG_TREE, "sys:catalog");
    assert_eq!(table_tree(0), "t:0");
    assert_eq!(table_tree(42), "t:42");
    assert_eq!(table_tree(u64::MAX), "t:18446744073709551615");
    assert_eq!(&*table_tree_name(300), "t:300");
    assert_eq!(index_tree(42, "by_x"), "i:42:by_x");
    assert_eq!(kv_tree("p1", "s1"), "kv:p1:s1");
}

// ---------------------------------------------------------------------------------------------
// Catalog entries (postcard)

#[test]
fn entry_project() {
    let with_owner = ProjectEntry {
        project_id: "p1".into(),
        owner_id: Some("o".into()),
        created_at_micros: 300,
    };
    let golden: &[u8] = &[
        0x02, b'p', b'1', // project_id
        0x01, 0x01, b'o', // owner_id: Some("o")
        0xac, 0x02, // created_at_micros 300
    ];
    assert_entry(&with_owner, golden);

    let without = ProjectEntry {
        project_id: "p1".into(),
        owner_id: None,
        created_at_micros: 0,
    };
    assert_entry(&without, &[0x02, b'p', b'1', 0x00, 0x00]);
}

#[test]
fn entry_scope() {
    let with_owner = ScopeEntry {
        project_id: "p1".into(),
        scope_id: "s1".into(),
        owner_id: Some("o".into()),
        created_at_micros: 300,
    };
    let golden: &[u8] = &[
        0x02, b'p', b'1', // project_id
        0x02, b's', b'1', // scope_id
        0x01, 0x01, b'o', // owner_id: Some("o")
        0xac, 0x02, // created_at_micros 300
    ];
    assert_entry(&with_owner, golden);

    let without = ScopeEntry {
        project_id: "p1".into(),
        scope_id: "s1".into(),
        owner_id: None,
        created_at_micros: 1,
    };
    assert_entry(&without, &[0x02, b'p', b'1', 0x02, b's', b'1', 0x00, 0x01]);
}

#[test]
fn entry_column_types() {
    let golden = [
        (ColumnType::Text, 0x00),
        (ColumnType::U8, 0x01),
        (ColumnType::U64, 0x02),
        (ColumnType::Integer, 0x03),
        (ColumnType::Float, 0x04),
        (ColumnType::Boolean, 0x05),
        (ColumnType::U256, 0x06),
        (ColumnType::I256, 0x07),
        (ColumnType::Blob, 0x08),
        (ColumnType::Timestamp, 0x09),
        (ColumnType::Json, 0x0a),
    ];
    for (column_type, byte) in golden {
        assert_entry(&column_type, &[byte]);
    }
}

#[test]
fn entry_index_types() {
    let golden = [
        (IndexType::BTree, 0x00),
        (IndexType::Art, 0x01),
        (IndexType::Hash, 0x02),
        (IndexType::UniqueHash, 0x03),
    ];
    for (index_type, byte) in golden {
        assert_entry(&index_type, &[byte]);
    }
}

/// Serde encodings of values (defaults, predicate literals): not the key or row tags.
fn value_entry_cases() -> Vec<(Value, Vec<u8>)> {
    vec![
        (Value::Text("hi".into()), vec![0x00, 0x02, b'h', b'i']),
        (Value::U8(7), vec![0x01, 0x07]),
        (Value::U64(300), vec![0x02, 0xac, 0x02]),
        (Value::Integer(-2), vec![0x03, 0x03]), // zigzag: −2 → 3
        (
            Value::Float(1.5),
            vec![0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf8, 0x3f],
        ),
        (Value::Boolean(true), vec![0x05, 0x01]),
        (
            Value::U256(u256()),
            cat(&[&[0x06, 0x80], &[0x00; 30], &[0x01]]),
        ),
        (
            Value::I256(i256_minus_two()),
            cat(&[&[0x07], &[0xff; 31], &[0xfe]]),
        ),
        (Value::Blob(vec![0x01, 0x02]), vec![0x08, 0x02, 0x01, 0x02]),
        (Value::Timestamp(1), vec![0x09, 0x02]), // zigzag: 1 → 2
        (Value::Json("{}".into()), vec![0x0a, 0x02, b'{', b'}']),
        (Value::Null, vec![0x0b]),
    ]
}

#[test]
fn entry_values() {
    for (value, golden) in value_entry_cases() {
        assert_entry(&value, &golden);
    }
}

fn is_null(c: &str) -> Expr {
    Expr::IsNull(c.into())
}

/// One expression of every variant.
fn expr_cases() -> Vec<(Expr, Vec<u8>)> {
    vec![
        (
            Expr::Eq("a".into(), Value::Integer(1)),
            vec![0x00, 0x01, b'a', 0x03, 0x02],
        ),
        (
            Expr::Ne("a".into(), Value::Text("x".into())),
            vec![0x01, 0x01, b'a', 0x00, 0x01, b'x'],
        ),
        (
            Expr::Lt("a".into(), Value::U8(3)),
            vec![0x02, 0x01, b'a', 0x01, 0x03],
        ),
        (
            Expr::Lte("a".into(), Value::U64(4)),
            vec![0x03, 0x01, b'a', 0x02, 0x04],
        ),
        (
            Expr::Gt("a".into(), Value::Float(0.5)),
            vec![
                0x04, 0x01, b'a', 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe0, 0x3f,
            ],
        ),
        (
            Expr::Gte("a".into(), Value::Timestamp(-1)),
            vec![0x05, 0x01, b'a', 0x09, 0x01],
        ),
        (
            Expr::In("a".into(), vec![Value::Null, Value::Boolean(false)]),
            vec![0x06, 0x01, b'a', 0x02, 0x0b, 0x05, 0x00],
        ),
        (
            Expr::Between("a".into(), Value::Integer(-1), Value::Integer(1)),
            vec![0x07, 0x01, b'a', 0x03, 0x01, 0x03, 0x02],
        ),
        (is_null("b"), vec![0x08, 0x01, b'b']),
        (Expr::IsNotNull("b".into()), vec![0x09, 0x01, b'b']),
        (
            Expr::Like("b".into(), "x%".into()),
            vec![0x0a, 0x01, b'b', 0x02, b'x', b'%'],
        ),
        (
            Expr::And(Box::new(is_null("a")), Box::new(is_null("b"))),
            vec![0x0b, 0x08, 0x01, b'a', 0x08, 0x01, b'b'],
        ),
        (
            Expr::Or(
                Box::new(is_null("a")),
                Box::new(Expr::IsNotNull("b".into())),
            ),
            vec![0x0c, 0x08, 0x01, b'a', 0x09, 0x01, b'b'],
        ),
        (
            Expr::Not(Box::new(is_null("a"))),
            vec![0x0d, 0x08, 0x01, b'a'],
        ),
    ]
}

#[test]
fn entry_exprs() {
    for (expr, golden) in expr_cases() {
        assert_entry(&expr, &golden);
    }
}

/// Every variant in one filter: `And(e0, And(e1, … And(e12, e13)))`, and its bytes (0x0b, the
/// index of `And`, before each but the last operand).
fn every_expr_filter() -> (Expr, Vec<u8>) {
    let mut cases = expr_cases();
    let (mut expr, mut bytes) = cases.pop().unwrap();
    while let Some((left, left_bytes)) = cases.pop() {
        expr = Expr::And(Box::new(left), Box::new(expr));
        bytes = cat(&[&[0x0b], &left_bytes, &bytes]);
    }
    (expr, bytes)
}

fn constraint_cases() -> Vec<(Constraint, Vec<u8>)> {
    vec![
        (
            Constraint::Unique {
                name: "u".into(),
                columns: vec!["a".into(), "b".into()],
            },
            vec![0x00, 0x01, b'u', 0x02, 0x01, b'a', 0x01, b'b'],
        ),
        (
            Constraint::Check {
                name: "ck".into(),
                expr: Expr::Gt("d".into(), Value::Integer(0)),
            },
            vec![0x01, 0x02, b'c', b'k', 0x04, 0x01, b'd', 0x03, 0x00],
        ),
        (
            Constraint::NotNull { column: "b".into() },
            vec![0x02, 0x01, b'b'],
        ),
        (
            Constraint::Default {
                column: "c".into(),
                value: Value::U64(7),
            },
            vec![0x03, 0x01, b'c', 0x02, 0x07],
        ),
    ]
}

#[test]
fn entry_constraints() {
    for (constraint, golden) in constraint_cases() {
        assert_entry(&constraint, &golden);
    }
}

#[test]
fn entry_column_def() {
    assert_entry(
        &column("id", ColumnType::Integer, false),
        &[0x02, b'i', b'd', 0x03, 0x00],
    );
    assert_entry(
        &column("note", ColumnType::Text, true),
        &[0x04, b'n', b'o', b't', b'e', 0x00, 0x01],
    );
}

#[test]
fn entry_index_def() {
    let def = IndexDef {
        project_id: "p".into(),
        scope_id: "s".into(),
        table_name: "t".into(),
        index_name: "by_b".into(),
        columns: vec!["b".into()],
        index_type: IndexType::Hash,
        partial_filter: Some(Expr::IsNotNull("b".into())),
    };
    let golden: &[u8] = &[
        0x01, b'p', // project_id
        0x01, b's', // scope_id
        0x01, b't', // table_name
        0x04, b'b', b'y', b'_', b'b', // index_name
        0x01, 0x01, b'b', // columns ["b"]
        0x02, // index_type Hash
        0x01, 0x09, 0x01, b'b', // partial_filter Some(IsNotNull("b"))
    ];
    assert_entry(&def, golden);
}

fn index(name: &str, columns: &[&str], index_type: IndexType, filter: Option<Expr>) -> IndexDef {
    IndexDef {
        project_id: "p".into(),
        scope_id: "s".into(),
        table_name: "t".into(),
        index_name: name.into(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        index_type,
        partial_filter: filter,
    }
}

#[test]
fn entry_table_schema_minimal() {
    let schema = TableSchema {
        project_id: "p".into(),
        scope_id: "s".into(),
        table_name: "t".into(),
        owner_id: None,
        columns: vec![column("id", ColumnType::Integer, false)],
        primary_key: vec!["id".into()],
        constraints: vec![],
        indexes: vec![],
        table_id: 5,
        slots: vec![0],
        slot_count: 1,
    };
    let golden: &[u8] = &[
        0x01, b'p', // project_id
        0x01, b's', // scope_id
        0x01, b't', // table_name
        0x00, // owner_id None
        0x01, 0x02, b'i', b'd', 0x03, 0x00, // columns [id Integer not null]
        0x01, 0x02, b'i', b'd', // primary_key ["id"]
        0x00, // constraints []
        0x00, // indexes []
        0x05, // table_id
        0x01, 0x00, // slots [0]
        0x01, // slot_count
    ];
    assert_entry(&schema, golden);
}

/// A table with a column of every type, a constraint of every kind, an index of every type and
/// a partial filter holding every expression variant.
#[test]
fn entry_table_schema_everything() {
    let (filter, filter_bytes) = every_expr_filter();
    let schema = TableSchema {
        project_id: "p".into(),
        scope_id: "s".into(),
        table_name: "t".into(),
        owner_id: Some("o".into()),
        columns: vec![
            column("a", ColumnType::Text, false),
            column("b", ColumnType::U8, true),
            column("c", ColumnType::U64, true),
            column("d", ColumnType::Integer, false),
            column("e", ColumnType::Float, true),
            column("f", ColumnType::Boolean, true),
            column("g", ColumnType::U256, true),
            column("h", ColumnType::I256, true),
            column("i", ColumnType::Blob, true),
            column("j", ColumnType::Timestamp, true),
            column("k", ColumnType::Json, true),
        ],
        primary_key: vec!["d".into(), "a".into()],
        constraints: constraint_cases().into_iter().map(|(c, _)| c).collect(),
        indexes: vec![
            index("ix0", &["b"], IndexType::BTree, None),
            index("ix1", &["c", "d"], IndexType::Art, Some(is_null("c").not())),
            index("ix2", &["e"], IndexType::Hash, None),
            index("ix3", &["k"], IndexType::UniqueHash, Some(filter)),
        ],
        table_id: 300,
        // Slot 10 retired (a dropped column): the last column lives in slot 11.
        slots: vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11],
        slot_count: 12,
    };
    let golden = cat(&[
        &[0x01, b'p'],       // project_id
        &[0x01, b's'],       // scope_id
        &[0x01, b't'],       // table_name
        &[0x01, 0x01, b'o'], // owner_id Some("o")
        &[0x0b],             // 11 columns: name, type, nullable
        &[0x01, b'a', 0x00, 0x00],
        &[0x01, b'b', 0x01, 0x01],
        &[0x01, b'c', 0x02, 0x01],
        &[0x01, b'd', 0x03, 0x00],
        &[0x01, b'e', 0x04, 0x01],
        &[0x01, b'f', 0x05, 0x01],
        &[0x01, b'g', 0x06, 0x01],
        &[0x01, b'h', 0x07, 0x01],
        &[0x01, b'i', 0x08, 0x01],
        &[0x01, b'j', 0x09, 0x01],
        &[0x01, b'k', 0x0a, 0x01],
        &[0x02, 0x01, b'd', 0x01, b'a'], // primary_key ["d", "a"]
        &[0x04],                         // 4 constraints
        &[0x00, 0x01, b'u', 0x02, 0x01, b'a', 0x01, b'b'], // Unique u (a, b)
        &[0x01, 0x02, b'c', b'k', 0x04, 0x01, b'd', 0x03, 0x00], // Check ck: d > 0
        &[0x02, 0x01, b'b'],             // NotNull b
        &[0x03, 0x01, b'c', 0x02, 0x07], // Default c = U64 7
        &[0x04],                         // 4 indexes
        &[0x01, b'p', 0x01, b's', 0x01, b't', 0x03, b'i', b'x', b'0'],
        &[0x01, 0x01, b'b', 0x00, 0x00], // (b), BTree, no filter
        &[0x01, b'p', 0x01, b's', 0x01, b't', 0x03, b'i', b'x', b'1'],
        &[0x02, 0x01, b'c', 0x01, b'd', 0x01], // (c, d), Art
        &[0x01, 0x0d, 0x08, 0x01, b'c'],       // filter Some(Not(IsNull(c)))
        &[0x01, b'p', 0x01, b's', 0x01, b't', 0x03, b'i', b'x', b'2'],
        &[0x01, 0x01, b'e', 0x02, 0x00], // (e), Hash, no filter
        &[0x01, b'p', 0x01, b's', 0x01, b't', 0x03, b'i', b'x', b'3'],
        &[0x01, 0x01, b'k', 0x03], // (k), UniqueHash
        &[0x01],                   // filter Some(every variant)
        &filter_bytes,
        &[0xac, 0x02],                             // table_id 300
        &[0x0b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11], // slots
        &[0x0c],                                   // slot_count 12
    ]);
    assert_entry(&schema, &golden);
}
