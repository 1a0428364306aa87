//! The event outbox: the owner of the table `_system.app.event_outbox`, an ordinary table (its
//! rows are stored and encoded as every table's, by `stored::rows`), so events are queryable
//! with the query API. This module knows its schema and builds and reads its rows.
//!
//! | column      | type      | key |
//! |-------------|-----------|-----|
//! | commit_seq  | Integer   | 1   |
//! | ts_micros   | Timestamp |     |
//! | project_id  | Text      |     |
//! | scope_id    | Text      |     |
//! | topic       | Text      | 2   |
//! | event_key   | Text      | 3   |
//! | payload     | Json      |     |
//!
//! The primary key orders events by commit, then topic, then key; two events of one commit
//! with the same topic and key are one row (the last written).

use std::ops::Bound;

use aedb_catalog::keys::encode_key;
use aedb_catalog::namespace::table_tree;
use aedb_catalog::schema::TableSchema;
use aedb_catalog::types::{ColumnType, Row, Value};
use aedb_pager::ReadTrees;

use crate::durable::LoggedTxn;
use crate::error::Result;
use crate::stored::rows;
use crate::stored::system::{int, text, unsigned, SystemTable};

pub const OUTBOX_TABLE: &str = "event_outbox";

/// One event, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOutboxRecord {
    pub commit_seq: u64,
    pub ts_micros: u64,
    pub project_id: String,
    pub scope_id: String,
    pub topic: String,
    pub event_key: String,
    pub payload_json: String,
}

/// The outbox table.
pub const OUTBOX: SystemTable = SystemTable {
    name: OUTBOX_TABLE,
    columns: &[
        ("commit_seq", ColumnType::Integer),
        ("ts_micros", ColumnType::Timestamp),
        ("project_id", ColumnType::Text),
        ("scope_id", ColumnType::Text),
        ("topic", ColumnType::Text),
        ("event_key", ColumnType::Text),
        ("payload", ColumnType::Json),
    ],
    primary_key: &["commit_seq", "topic", "event_key"],
};

/// The outbox's schema, if it was created.
pub fn outbox(reader: &impl ReadTrees) -> Result<Option<TableSchema>> {
    OUTBOX.find(reader)
}

/// The outbox's schema, created on first use.
pub fn ensure_outbox(txn: &mut LoggedTxn, now_micros: u64) -> Result<TableSchema> {
    OUTBOX.ensure(txn, now_micros)
}

fn seq_value(seq: u64) -> Result<Value> {
    int(seq).map(Value::Integer)
}

/// Store an event of the committing transaction.
pub fn append(txn: &mut LoggedTxn, schema: &TableSchema, event: &EventOutboxRecord) -> Result<()> {
    let key = [
        seq_value(event.commit_seq)?,
        Value::Text(event.topic.clone()),
        Value::Text(event.event_key.clone()),
    ];
    let pk = encode_key(&key);
    let row = Row::from_values(vec![
        key[0].clone(),
        Value::Timestamp(int(event.ts_micros)?),
        Value::Text(event.project_id.clone()),
        Value::Text(event.scope_id.clone()),
        key[1].clone(),
        key[2].clone(),
        Value::Json(event.payload_json.clone()),
    ]);
    let old = rows::read_row(txn, schema, &pk)?;
    rows::write_row(txn, schema, &pk, old.as_ref(), &row)
}

fn record_of(row: &Row) -> Result<EventOutboxRecord> {
    let v = &row.values;
    Ok(EventOutboxRecord {
        commit_seq: unsigned(OUTBOX_TABLE, v.first())?,
        ts_micros: unsigned(OUTBOX_TABLE, v.get(1))?,
        project_id: text(OUTBOX_TABLE, v.get(2))?,
        scope_id: text(OUTBOX_TABLE, v.get(3))?,
        topic: text(OUTBOX_TABLE, v.get(4))?,
        event_key: text(OUTBOX_TABLE, v.get(5))?,
        payload_json: text(OUTBOX_TABLE, v.get(6))?,
    })
}

/// Events of commits after `after_seq`, in (commit, topic, key) order, of `topic` when given,
/// at most `limit`.
pub fn read_after(
    reader: &impl ReadTrees,
    topic: Option<&str>,
    after_seq: u64,
    limit: usize,
) -> Result<Vec<EventOutboxRecord>> {
    let Some(schema) = outbox(reader)? else {
        return Ok(Vec::new());
    };
    if limit == 0 {
        return Ok(Vec::new());
    }
    let Some(first) = after_seq.checked_add(1) else {
        return Ok(Vec::new());
    };
    let lower = encode_key(&[seq_value(first)?]);
    let tree = table_tree(schema.table_id);
    let mut out = Vec::new();
    for item in reader.range(&tree, Bound::Included(&lower), Bound::Unbounded, false)? {
        let (_, bytes) = item?;
        let row = rows::decode(&schema, &bytes)?;
        let record = record_of(&row)?;
        if topic.is_none_or(|t| t == record.topic) {
            out.push(record);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}

/// Every event of commit `seq` (of `topic` when given), in (topic, key) order.
pub fn read_commit(
    reader: &impl ReadTrees,
    topic: Option<&str>,
    seq: u64,
) -> Result<Vec<EventOutboxRecord>> {
    let Some(schema) = outbox(reader)? else {
        return Ok(Vec::new());
    };
    let prefix = encode_key(&[seq_value(seq)?]);
    let tree = table_tree(schema.table_id);
    let mut out = Vec::new();
    for item in reader.prefix(&tree, &prefix, false)? {
        let (_, bytes) = item?;
        let record = record_of(&rows::decode(&schema, &bytes)?)?;
        if topic.is_none_or(|t| t == record.topic) {
            out.push(record);
        }
    }
    Ok(out)
}
