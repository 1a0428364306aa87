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
    nullable: &[],
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

/// Where a scan of the outbox starts: after a commit, or after one event's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanFrom {
    /// The first event of the commits after this one.
    AfterCommit(u64),
    /// The event after this primary key (as [`ScannedPage::last_key`] gives it).
    AfterKey(Vec<u8>),
}

/// A bounded stretch of the outbox.
#[derive(Debug, Clone, Default)]
pub struct ScannedPage {
    /// The events of the topic asked for (all when none was).
    pub events: Vec<EventOutboxRecord>,
    /// The key of the last row examined, matching or not: where the next page starts.
    pub last_key: Option<Vec<u8>>,
    /// The commit of the last row examined.
    pub last_seq: Option<u64>,
    /// Rows read, matching or not.
    pub examined: usize,
    /// The end of the outbox was reached.
    pub exhausted: bool,
}

/// Rows after `from`, in key order, until `max_matches` events of `topic` were found or
/// `max_examined` rows were read, whichever comes first.
pub fn scan(
    reader: &impl ReadTrees,
    topic: Option<&str>,
    from: &ScanFrom,
    max_matches: usize,
    max_examined: usize,
) -> Result<ScannedPage> {
    let Some(schema) = outbox(reader)? else {
        return Ok(ScannedPage {
            exhausted: true,
            ..ScannedPage::default()
        });
    };
    let lower = match from {
        ScanFrom::AfterCommit(seq) => match seq.checked_add(1) {
            Some(next) => Bound::Included(encode_key(&[seq_value(next)?])),
            None => {
                return Ok(ScannedPage {
                    exhausted: true,
                    ..ScannedPage::default()
                })
            }
        },
        ScanFrom::AfterKey(key) => Bound::Excluded(key.clone()),
    };
    let tree = table_tree(schema.table_id);
    let mut page = ScannedPage::default();
    let mut examined = 0;
    let mut range = reader.range(
        &tree,
        lower.as_ref().map(Vec::as_slice),
        Bound::Unbounded,
        false,
    )?;
    loop {
        if page.events.len() >= max_matches || examined >= max_examined {
            return Ok(page);
        }
        let Some(item) = range.next() else {
            page.exhausted = true;
            return Ok(page);
        };
        let (key, bytes) = item?;
        examined += 1;
        page.examined = examined;
        let record = record_of(&rows::decode(&schema, &bytes)?)?;
        page.last_seq = Some(record.commit_seq);
        page.last_key = Some(key);
        if topic.is_none_or(|t| t == record.topic) {
            page.events.push(record);
        }
    }
}
