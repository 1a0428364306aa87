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
use aedb_catalog::namespace::{ProjectEntry, ScopeEntry, DEFAULT_SCOPE_ID, SYSTEM_PROJECT_ID};
use aedb_catalog::schema::{ColumnDef, TableSchema};
use aedb_catalog::types::{ColumnType, Row, Value};
use aedb_pager::ReadTrees;

use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};
use crate::stored::{catalog, rows};

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

fn column(name: &str, col_type: ColumnType) -> ColumnDef {
    ColumnDef {
        name: name.into(),
        col_type,
        nullable: false,
    }
}

fn outbox_columns() -> Vec<ColumnDef> {
    vec![
        column("commit_seq", ColumnType::Integer),
        column("ts_micros", ColumnType::Timestamp),
        column("project_id", ColumnType::Text),
        column("scope_id", ColumnType::Text),
        column("topic", ColumnType::Text),
        column("event_key", ColumnType::Text),
        column("payload", ColumnType::Json),
    ]
}

/// The outbox's schema, if it was created.
pub fn outbox(reader: &impl ReadTrees) -> Result<Option<TableSchema>> {
    catalog::find_table(reader, SYSTEM_PROJECT_ID, DEFAULT_SCOPE_ID, OUTBOX_TABLE)
}

/// The outbox's schema, creating the system project, its scope and the table on first use.
pub fn ensure_outbox(txn: &mut LoggedTxn, now_micros: u64) -> Result<TableSchema> {
    if let Some(schema) = outbox(txn)? {
        return Ok(schema);
    }
    if catalog::get_project(txn, SYSTEM_PROJECT_ID)?.is_none() {
        catalog::put_project(
            txn,
            &ProjectEntry {
                project_id: SYSTEM_PROJECT_ID.into(),
                owner_id: None,
                created_at_micros: now_micros,
            },
        )?;
    }
    if catalog::get_scope(txn, SYSTEM_PROJECT_ID, DEFAULT_SCOPE_ID)?.is_none() {
        catalog::put_scope(
            txn,
            &ScopeEntry {
                project_id: SYSTEM_PROJECT_ID.into(),
                scope_id: DEFAULT_SCOPE_ID.into(),
                owner_id: None,
                created_at_micros: now_micros,
            },
        )?;
    }
    let columns = outbox_columns();
    let schema = TableSchema {
        project_id: SYSTEM_PROJECT_ID.into(),
        scope_id: DEFAULT_SCOPE_ID.into(),
        table_name: OUTBOX_TABLE.into(),
        owner_id: None,
        slots: (0..columns.len() as u32).collect(),
        slot_count: columns.len() as u32,
        columns,
        primary_key: vec!["commit_seq".into(), "topic".into(), "event_key".into()],
        constraints: Vec::new(),
        indexes: Vec::new(),
        table_id: catalog::next_table_id(txn)?,
    };
    txn.create_tree(&table_tree(schema.table_id))?;
    catalog::put_table(txn, &schema)?;
    Ok(schema)
}

fn seq_value(seq: u64) -> Result<Value> {
    i64::try_from(seq)
        .map(Value::Integer)
        .map_err(|_| AedbError::Overflow)
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
        Value::Timestamp(i64::try_from(event.ts_micros).map_err(|_| AedbError::Overflow)?),
        Value::Text(event.project_id.clone()),
        Value::Text(event.scope_id.clone()),
        key[1].clone(),
        key[2].clone(),
        Value::Json(event.payload_json.clone()),
    ]);
    let old = rows::read_row(txn, schema, &pk)?;
    rows::write_row(txn, schema, &pk, old.as_ref(), &row)
}

fn text(value: Option<&Value>) -> Result<String> {
    match value {
        Some(Value::Text(s)) | Some(Value::Json(s)) => Ok(s.clone()),
        other => Err(AedbError::Corruption(format!(
            "event outbox row holds {other:?} where text belongs"
        ))),
    }
}

fn unsigned(value: Option<&Value>) -> Result<u64> {
    match value {
        Some(Value::Integer(n)) | Some(Value::Timestamp(n)) => u64::try_from(*n)
            .map_err(|_| AedbError::Corruption(format!("event outbox holds a negative {n}"))),
        other => Err(AedbError::Corruption(format!(
            "event outbox row holds {other:?} where a number belongs"
        ))),
    }
}

fn record_of(row: &Row) -> Result<EventOutboxRecord> {
    let v = &row.values;
    Ok(EventOutboxRecord {
        commit_seq: unsigned(v.first())?,
        ts_micros: unsigned(v.get(1))?,
        project_id: text(v.get(2))?,
        scope_id: text(v.get(3))?,
        topic: text(v.get(4))?,
        event_key: text(v.get(5))?,
        payload_json: text(v.get(6))?,
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
