//! The audit tables: the owner of `_system.app.authz_audit` (one row per grant, revoke, read
//! policy change and ownership transfer) and `_system.app.assertion_audit` (one row per failed
//! envelope assertion). Both are system tables (`stored::system`): queryable by a caller
//! granted `TableRead` on them, never writable by users.
//!
//! | table           | key                 | columns                                             |
//! |-----------------|---------------------|-----------------------------------------------------|
//! | authz_audit     | seq, ordinal        | ts_micros, action, actor_id, target_caller_id,      |
//! |                 |                     | permission?, project_id?, scope_id?, table_name?,   |
//! |                 |                     | delegable, resource_type?, resource_id?, metadata?  |
//! | assertion_audit | seq, ordinal        | ts_micros, caller_id?, assertion_index, assertion   |
//! |                 |                     | (JSON), actual (JSON), error                        |
//!
//! `seq` is the commit that made the change (for assertions: the commit that recorded the
//! failure, since the failed commit has none); `ordinal` numbers the rows of one commit from
//! 0. `?`: nullable. Text columns hold the caller ids as given (`""` when anonymous).

use aedb_catalog::keys::encode_key;
use aedb_catalog::schema::TableSchema;
use aedb_catalog::types::{ColumnType, Row, Value};

use crate::durable::LoggedTxn;
use crate::error::Result;
use crate::stored::rows;
use crate::stored::system::{int, SystemTable};

pub const AUTHZ_AUDIT_TABLE: &str = "authz_audit";
pub const ASSERTION_AUDIT_TABLE: &str = "assertion_audit";

pub const AUTHZ_AUDIT: SystemTable = SystemTable {
    name: AUTHZ_AUDIT_TABLE,
    columns: &[
        ("seq", ColumnType::Integer),
        ("ordinal", ColumnType::Integer),
        ("ts_micros", ColumnType::Timestamp),
        ("action", ColumnType::Text),
        ("actor_id", ColumnType::Text),
        ("target_caller_id", ColumnType::Text),
        ("permission", ColumnType::Text),
        ("project_id", ColumnType::Text),
        ("scope_id", ColumnType::Text),
        ("table_name", ColumnType::Text),
        ("delegable", ColumnType::Boolean),
        ("resource_type", ColumnType::Text),
        ("resource_id", ColumnType::Text),
        ("metadata", ColumnType::Text),
    ],
    primary_key: &["seq", "ordinal"],
    nullable: &[
        "permission",
        "project_id",
        "scope_id",
        "table_name",
        "resource_type",
        "resource_id",
        "metadata",
    ],
};

pub const ASSERTION_AUDIT: SystemTable = SystemTable {
    name: ASSERTION_AUDIT_TABLE,
    columns: &[
        ("seq", ColumnType::Integer),
        ("ordinal", ColumnType::Integer),
        ("ts_micros", ColumnType::Timestamp),
        ("caller_id", ColumnType::Text),
        ("assertion_index", ColumnType::Integer),
        ("assertion", ColumnType::Json),
        ("actual", ColumnType::Json),
        ("error", ColumnType::Text),
    ],
    primary_key: &["seq", "ordinal"],
    nullable: &["caller_id"],
};

/// One change of who may do what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthzChange {
    /// `grant`, `revoke`, `set_read_policy`, `clear_read_policy` or `transfer_ownership`.
    pub action: &'static str,
    pub actor_id: String,
    pub target_caller_id: String,
    /// The permission's Debug form (None for policies and ownership).
    pub permission: Option<String>,
    pub project_id: Option<String>,
    pub scope_id: Option<String>,
    pub table_name: Option<String>,
    pub delegable: bool,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub metadata: Option<String>,
}

/// One failed assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionFailure {
    pub caller_id: Option<String>,
    pub assertion_index: u64,
    pub assertion_json: String,
    pub actual_json: String,
}

fn optional(text: &Option<String>) -> Value {
    text.as_ref()
        .map_or(Value::Null, |t| Value::Text(t.clone()))
}

/// Append `values` (after seq and ordinal) as the next row of this commit in `table`.
fn append(
    txn: &mut LoggedTxn,
    table: &SystemTable,
    now_micros: u64,
    values: Vec<Value>,
) -> Result<()> {
    let schema: TableSchema = table.ensure(txn, now_micros)?;
    let seq = Value::Integer(int(txn.seq())?);
    // Rows of one commit are few: find the first free ordinal by looking.
    let mut ordinal = 0i64;
    let pk = loop {
        let pk = encode_key(&[seq.clone(), Value::Integer(ordinal)]);
        if rows::read_row(txn, &schema, &pk)?.is_none() {
            break pk;
        }
        ordinal += 1;
    };
    let mut row = vec![
        seq,
        Value::Integer(ordinal),
        Value::Timestamp(int(now_micros)?),
    ];
    row.extend(values);
    rows::write_row(txn, &schema, &pk, None, &Row::from_values(row))
}

/// Record a change of grants, policies or ownership in the committing transaction.
pub fn record_authz(txn: &mut LoggedTxn, now_micros: u64, change: &AuthzChange) -> Result<()> {
    let values = vec![
        Value::Text(change.action.into()),
        Value::Text(change.actor_id.clone()),
        Value::Text(change.target_caller_id.clone()),
        optional(&change.permission),
        optional(&change.project_id),
        optional(&change.scope_id),
        optional(&change.table_name),
        Value::Boolean(change.delegable),
        optional(&change.resource_type),
        optional(&change.resource_id),
        optional(&change.metadata),
    ];
    append(txn, &AUTHZ_AUDIT, now_micros, values)
}

/// Record a failed assertion (in a commit of its own: the failed one wrote nothing).
pub fn record_assertion(
    txn: &mut LoggedTxn,
    now_micros: u64,
    failure: &AssertionFailure,
) -> Result<()> {
    let values = vec![
        optional(&failure.caller_id),
        Value::Integer(int(failure.assertion_index)?),
        Value::Json(failure.assertion_json.clone()),
        Value::Json(failure.actual_json.clone()),
        Value::Text("assertion_failed".into()),
    ];
    append(txn, &ASSERTION_AUDIT, now_micros, values)
}
