//! The lifecycle outbox: the owner of `_system.app.lifecycle_outbox`, one row per commit that
//! emitted an event, holding all that commit's lifecycle events as JSON (an ordinary,
//! queryable table). The original also records DDL-only commits; here that would create the
//! system project in every database, so only hooks hear those.
//!
//! | column      | type      | key |
//! |-------------|-----------|-----|
//! | commit_seq  | Integer   | 1   |
//! | ts_micros   | Timestamp |     |
//! | event_count | Integer   |     |
//! | events_json | Json      |     |

use aedb_catalog::keys::encode_key;
use aedb_catalog::types::{ColumnType, Row, Value};

use crate::durable::LoggedTxn;
use crate::error::Result;
use crate::stored::rows;
use crate::stored::system::{int, SystemTable};

pub const LIFECYCLE_OUTBOX_TABLE: &str = "lifecycle_outbox";

const LIFECYCLE_OUTBOX: SystemTable = SystemTable {
    name: LIFECYCLE_OUTBOX_TABLE,
    columns: &[
        ("commit_seq", ColumnType::Integer),
        ("ts_micros", ColumnType::Timestamp),
        ("event_count", ColumnType::Integer),
        ("events_json", ColumnType::Json),
    ],
    primary_key: &["commit_seq"],
    nullable: &[],
};

/// Store the committing transaction's lifecycle events (`events_json`, `count` of them).
pub fn append(
    txn: &mut LoggedTxn,
    count: usize,
    events_json: String,
    now_micros: u64,
) -> Result<()> {
    let schema = LIFECYCLE_OUTBOX.ensure(txn, now_micros)?;
    let seq = Value::Integer(int(txn.seq())?);
    let pk = encode_key(std::slice::from_ref(&seq));
    let row = Row::from_values(vec![
        seq,
        Value::Timestamp(int(now_micros)?),
        Value::Integer(int(count as u64)?),
        Value::Json(events_json),
    ]);
    let old = rows::read_row(txn, &schema, &pk)?;
    rows::write_row(txn, &schema, &pk, old.as_ref(), &row)
}
