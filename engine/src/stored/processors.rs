//! Reactive processors' durable state: the owner of the system tables
//! `_system.app.reactive_processor_checkpoints` (how far each processor has processed the event
//! stream), `_system.app.reactive_processor_registry` (which processors exist, their options
//! and whether they are enabled) and `_system.app.reactive_processor_dead_letters` (events a
//! processor gave up on). Ordinary tables (rows as `stored::rows`), queryable.
//!
//! | table | columns (key first) |
//! |---|---|
//! | checkpoints | processor_name Text · checkpoint_seq Integer · updated_at_micros Timestamp |
//! | registry | processor_name Text · options_json Json · enabled Boolean · updated_at_micros Timestamp |
//! | dead letters | processor_name Text, commit_seq Integer, topic Text, event_key Text · payload_json Json · error Text · attempts Integer · failed_at_micros Timestamp |

use aedb_catalog::keys::encode_key;
use aedb_catalog::namespace::table_tree;
use aedb_catalog::schema::TableSchema;
use aedb_catalog::types::{ColumnType, Row, Value};
use aedb_pager::ReadTrees;

use crate::durable::LoggedTxn;
use crate::error::Result;
use crate::stored::rows;
use crate::stored::system::{boolean, int, text, unsigned, SystemTable};

pub const CHECKPOINTS_TABLE: &str = "reactive_processor_checkpoints";
pub const REGISTRY_TABLE: &str = "reactive_processor_registry";
pub const DEAD_LETTERS_TABLE: &str = "reactive_processor_dead_letters";

const CHECKPOINTS: SystemTable = SystemTable {
    name: CHECKPOINTS_TABLE,
    columns: &[
        ("processor_name", ColumnType::Text),
        ("checkpoint_seq", ColumnType::Integer),
        ("updated_at_micros", ColumnType::Timestamp),
    ],
    primary_key: &["processor_name"],
    nullable: &[],
};

const REGISTRY: SystemTable = SystemTable {
    name: REGISTRY_TABLE,
    columns: &[
        ("processor_name", ColumnType::Text),
        ("options_json", ColumnType::Json),
        ("enabled", ColumnType::Boolean),
        ("updated_at_micros", ColumnType::Timestamp),
    ],
    primary_key: &["processor_name"],
    nullable: &[],
};

const DEAD_LETTERS: SystemTable = SystemTable {
    name: DEAD_LETTERS_TABLE,
    columns: &[
        ("processor_name", ColumnType::Text),
        ("commit_seq", ColumnType::Integer),
        ("topic", ColumnType::Text),
        ("event_key", ColumnType::Text),
        ("payload_json", ColumnType::Json),
        ("error", ColumnType::Text),
        ("attempts", ColumnType::Integer),
        ("failed_at_micros", ColumnType::Timestamp),
    ],
    // The topic is part of the key: one commit may hold events of two topics with one key.
    primary_key: &["processor_name", "commit_seq", "topic", "event_key"],
    nullable: &[],
};

fn name_key(name: &str) -> Vec<u8> {
    encode_key(&[Value::Text(name.into())])
}

fn upsert(txn: &mut LoggedTxn, schema: &TableSchema, pk: &[u8], row: &Row) -> Result<()> {
    let old = rows::read_row(txn, schema, pk)?;
    rows::write_row(txn, schema, pk, old.as_ref(), row)
}

// ---- checkpoints ----

/// The durable checkpoint of processor `name`, if it has one.
pub fn checkpoint(reader: &impl ReadTrees, name: &str) -> Result<Option<u64>> {
    let Some(schema) = CHECKPOINTS.find(reader)? else {
        return Ok(None);
    };
    match rows::read_row(reader, &schema, &name_key(name))? {
        Some(row) => Ok(Some(unsigned(CHECKPOINTS_TABLE, row.values.get(1))?)),
        None => Ok(None),
    }
}

pub fn put_checkpoint(txn: &mut LoggedTxn, name: &str, seq: u64, now_micros: u64) -> Result<()> {
    let schema = CHECKPOINTS.ensure(txn, now_micros)?;
    let row = Row::from_values(vec![
        Value::Text(name.into()),
        Value::Integer(int(seq)?),
        Value::Timestamp(int(now_micros)?),
    ]);
    upsert(txn, &schema, &name_key(name), &row)
}

// ---- the registry ----

/// A processor as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub processor_name: String,
    pub options_json: String,
    pub enabled: bool,
    pub updated_at_micros: u64,
}

fn registration_of(row: &Row) -> Result<Registration> {
    let v = &row.values;
    Ok(Registration {
        processor_name: text(REGISTRY_TABLE, v.first())?,
        options_json: text(REGISTRY_TABLE, v.get(1))?,
        enabled: boolean(REGISTRY_TABLE, v.get(2))?,
        updated_at_micros: unsigned(REGISTRY_TABLE, v.get(3))?,
    })
}

pub fn registration(reader: &impl ReadTrees, name: &str) -> Result<Option<Registration>> {
    let Some(schema) = REGISTRY.find(reader)? else {
        return Ok(None);
    };
    rows::read_row(reader, &schema, &name_key(name))?
        .map(|row| registration_of(&row))
        .transpose()
}

/// Every registered processor, by name.
pub fn registrations(reader: &impl ReadTrees) -> Result<Vec<Registration>> {
    let Some(schema) = REGISTRY.find(reader)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in rows::scan(reader, &schema)? {
        let (_, row) = item?;
        out.push(registration_of(&row?)?);
    }
    Ok(out)
}

pub fn put_registration(txn: &mut LoggedTxn, registration: &Registration) -> Result<()> {
    let schema = REGISTRY.ensure(txn, registration.updated_at_micros)?;
    let row = Row::from_values(vec![
        Value::Text(registration.processor_name.clone()),
        Value::Json(registration.options_json.clone()),
        Value::Boolean(registration.enabled),
        Value::Timestamp(int(registration.updated_at_micros)?),
    ]);
    upsert(txn, &schema, &name_key(&registration.processor_name), &row)
}

// ---- dead letters ----

/// An event a processor gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub processor_name: String,
    pub commit_seq: u64,
    pub topic: String,
    pub event_key: String,
    pub payload_json: String,
    pub error: String,
    pub attempts: u64,
    pub failed_at_micros: u64,
}

pub fn put_dead_letter(txn: &mut LoggedTxn, letter: &DeadLetter) -> Result<()> {
    let schema = DEAD_LETTERS.ensure(txn, letter.failed_at_micros)?;
    let key = [
        Value::Text(letter.processor_name.clone()),
        Value::Integer(int(letter.commit_seq)?),
        Value::Text(letter.topic.clone()),
        Value::Text(letter.event_key.clone()),
    ];
    let row = Row::from_values(vec![
        key[0].clone(),
        key[1].clone(),
        key[2].clone(),
        key[3].clone(),
        Value::Json(letter.payload_json.clone()),
        Value::Text(letter.error.clone()),
        Value::Integer(int(letter.attempts)?),
        Value::Timestamp(int(letter.failed_at_micros)?),
    ]);
    upsert(txn, &schema, &encode_key(&key), &row)
}

/// The dead letters of processor `name`, in (commit, topic, key) order.
pub fn dead_letters(reader: &impl ReadTrees, name: &str) -> Result<Vec<DeadLetter>> {
    let Some(schema) = DEAD_LETTERS.find(reader)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    // The key starts with the processor's name: its letters are one key range.
    let tree = table_tree(schema.table_id);
    for item in reader.prefix(&tree, &name_key(name), false)? {
        let (_, bytes) = item?;
        let row = rows::decode(&schema, &bytes)?;
        let v = &row.values;
        let processor_name = text(DEAD_LETTERS_TABLE, v.first())?;
        out.push(DeadLetter {
            processor_name,
            commit_seq: unsigned(DEAD_LETTERS_TABLE, v.get(1))?,
            topic: text(DEAD_LETTERS_TABLE, v.get(2))?,
            event_key: text(DEAD_LETTERS_TABLE, v.get(3))?,
            payload_json: text(DEAD_LETTERS_TABLE, v.get(4))?,
            error: text(DEAD_LETTERS_TABLE, v.get(5))?,
            attempts: unsigned(DEAD_LETTERS_TABLE, v.get(6))?,
            failed_at_micros: unsigned(DEAD_LETTERS_TABLE, v.get(7))?,
        });
    }
    Ok(out)
}
