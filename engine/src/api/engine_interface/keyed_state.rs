//! Keyed state: a table with a one-column primary key, read and written by that key.

use std::ops::Bound;

use aedb_catalog::keys::{decode_prefix, encode_key};
use aedb_catalog::namespace::index_tree;
use aedb_catalog::schema::{IndexType, TableSchema};
use aedb_catalog::types::{Row, Value};
use aedb_pager::store::prefix_end;
use aedb_pager::ReadTrees;

use crate::commit::envelope::ReadAssertion;
use crate::commit::tx::{TransactionEnvelope, WriteIntent};
use crate::commit::{CommitResult, Mutation};
use crate::error::{AedbError, Result};
use crate::query::plan::ConsistencyMode;
use crate::stored::{catalog, rows};

use super::super::AedbInstance;
use super::{EffectOperation, KeyedStateQueryRequest};

/// The schema of a keyed-state table: it must exist and have a one-column primary key.
pub(super) fn schema(
    reader: &impl ReadTrees,
    project: &str,
    scope: &str,
    table: &str,
) -> Result<TableSchema> {
    let schema = catalog::find_table(reader, project, scope, table)?.ok_or_else(|| {
        AedbError::Validation(format!("table not found: {project}.{scope}.{table}"))
    })?;
    if schema.primary_key.len() != 1 {
        return Err(AedbError::Validation(format!(
            "keyed state {project}.{scope}.{table} requires single-column primary key"
        )));
    }
    Ok(schema)
}

/// The committed row of `key` and the assertion that keeps it so until the commit: its
/// version, or its absence (an update made on it must not overwrite a newer write).
pub(super) fn read_for_update(
    reader: &impl ReadTrees,
    schema: &TableSchema,
    project: &str,
    scope: &str,
    table: &str,
    key: &Value,
) -> Result<(Option<Row>, ReadAssertion)> {
    let current = rows::read_row_versioned(reader, schema, &encode_key(std::slice::from_ref(key)))?;
    let primary_key = vec![key.clone()];
    let (project_id, scope_id, table_name) = (project.into(), scope.into(), table.into());
    Ok(match current {
        Some((row, version)) => (
            Some(row),
            ReadAssertion::RowVersion {
                project_id,
                scope_id,
                table_name,
                primary_key,
                expected_seq: version,
            },
        ),
        None => (
            None,
            ReadAssertion::RowExists {
                project_id,
                scope_id,
                table_name,
                primary_key,
                expected: false,
            },
        ),
    })
}

fn scan_bound(max_scan_rows: usize) -> AedbError {
    AedbError::ScanBoundExceeded {
        estimated_rows: max_scan_rows as u64 + 1,
        max_scan_rows: max_scan_rows as u64,
    }
}

/// A keyed-state row must carry `key` in its key column.
pub(super) fn check_row(schema: &TableSchema, key: &Value, row: &Row) -> Result<()> {
    let at = schema.pk_positions().first().copied().unwrap_or(0);
    if row.values.get(at) != Some(key) {
        return Err(AedbError::Validation(format!(
            "keyed state {}: the row's {} does not equal the key {key:?}",
            schema.table_name, schema.primary_key[0]
        )));
    }
    Ok(())
}

pub(super) fn write_mutation(
    project: &str,
    scope: &str,
    table: &str,
    key: Value,
    row: Row,
) -> Mutation {
    Mutation::Upsert {
        project_id: project.into(),
        scope_id: scope.into(),
        table_name: table.into(),
        primary_key: vec![key],
        row,
    }
}

pub(super) fn delete_mutation(project: &str, scope: &str, table: &str, key: Value) -> Mutation {
    Mutation::Delete {
        project_id: project.into(),
        scope_id: scope.into(),
        table_name: table.into(),
        primary_key: vec![key],
    }
}

/// The mutation an effect stands for; keyed-state writes are checked against the table.
pub(super) fn effect_mutation(
    reader: &impl ReadTrees,
    project: &str,
    scope: &str,
    effect: &EffectOperation,
) -> Result<Mutation> {
    Ok(match effect {
        EffectOperation::Accumulate {
            accumulator,
            delta,
            dedupe_id,
            order_key,
        } => Mutation::Accumulate {
            project_id: project.into(),
            scope_id: scope.into(),
            accumulator_name: accumulator.clone(),
            delta: *delta,
            dedupe_key: dedupe_id.clone(),
            order_key: *order_key,
            release_exposure_id: None,
        },
        EffectOperation::Expose {
            accumulator,
            amount,
            dedupe_id,
        } => Mutation::ExposeAccumulator {
            project_id: project.into(),
            scope_id: scope.into(),
            accumulator_name: accumulator.clone(),
            amount: *amount,
            exposure_id: dedupe_id.clone(),
        },
        EffectOperation::ReleaseExposure {
            accumulator,
            dedupe_id,
        } => Mutation::ReleaseAccumulatorExposure {
            project_id: project.into(),
            scope_id: scope.into(),
            accumulator_name: accumulator.clone(),
            exposure_id: dedupe_id.clone(),
        },
        EffectOperation::Write {
            keyed_state,
            key,
            value,
        } => {
            let schema = schema(reader, project, scope, keyed_state)?;
            check_row(&schema, key, value)?;
            write_mutation(project, scope, keyed_state, key.clone(), value.clone())
        }
        EffectOperation::Delete { keyed_state, key } => {
            schema(reader, project, scope, keyed_state)?;
            delete_mutation(project, scope, keyed_state, key.clone())
        }
    })
}

/// The primary keys of a BTree index's entries, in index order, starting with `prefix`.
fn index_keys<'r>(
    reader: &'r impl ReadTrees,
    schema: &TableSchema,
    index_name: &str,
    prefix: &[Value],
) -> Result<impl Iterator<Item = Result<Vec<u8>>> + 'r> {
    let def = schema.index(index_name).ok_or_else(|| {
        AedbError::Validation(format!(
            "index not found: {}.{}.{}.{index_name}",
            schema.project_id, schema.scope_id, schema.table_name
        ))
    })?;
    let columns = def.columns.len();
    let hashed = matches!(def.index_type, IndexType::Hash | IndexType::UniqueHash);
    let start = encode_key(prefix);
    let end = prefix_end(&start);
    let tree = index_tree(schema.table_id, index_name);
    let lower = Bound::Included(start.as_slice());
    let upper = end.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
    let range = reader.range(&tree, lower, upper, false)?;
    // Hash indexes have no order to walk: nothing, as in the original.
    Ok(range
        .take(if hashed { 0 } else { usize::MAX })
        .map(move |item| {
            let (entry, _) = item?;
            let (_, used) =
                decode_prefix(&entry, columns).map_err(|e| AedbError::Corruption(e.to_string()))?;
            Ok(entry[used..].to_vec())
        }))
}

impl AedbInstance {
    pub async fn keyed_state_read(
        &self,
        project_id: &str,
        scope_id: &str,
        keyed_state: &str,
        key: Value,
        consistency: ConsistencyMode,
    ) -> Result<Option<Row>> {
        self.anonymous("keyed_state_read")?;
        let snapshot = self.snapshot_for(consistency)?;
        let schema = schema(&snapshot, project_id, scope_id, keyed_state)?;
        rows::read_row(&snapshot, &schema, &encode_key(&[key]))
    }

    /// One column of the row of `key`; an unknown column is a `Validation` error.
    #[allow(clippy::too_many_arguments)]
    pub async fn keyed_state_read_field(
        &self,
        project_id: &str,
        scope_id: &str,
        keyed_state: &str,
        key: Value,
        field: &str,
        consistency: ConsistencyMode,
    ) -> Result<Option<Value>> {
        self.anonymous("keyed_state_read_field")?;
        let snapshot = self.snapshot_for(consistency)?;
        let schema = schema(&snapshot, project_id, scope_id, keyed_state)?;
        let at = schema.column_index(field).ok_or_else(|| {
            AedbError::Validation(format!("unknown field {field} of {keyed_state}"))
        })?;
        let row = rows::read_row(&snapshot, &schema, &encode_key(&[key]))?;
        Ok(row.and_then(|r| r.values.get(at).cloned()))
    }

    pub async fn keyed_state_write(
        &self,
        project_id: &str,
        scope_id: &str,
        keyed_state: &str,
        key: Value,
        value: Row,
    ) -> Result<CommitResult> {
        self.anonymous("keyed_state_write")?;
        let schema = schema(&self.engine.snapshot(), project_id, scope_id, keyed_state)?;
        check_row(&schema, &key, &value)?;
        self.commit(write_mutation(
            project_id,
            scope_id,
            keyed_state,
            key,
            value,
        ))
        .await
    }

    pub async fn keyed_state_delete(
        &self,
        project_id: &str,
        scope_id: &str,
        keyed_state: &str,
        key: Value,
    ) -> Result<CommitResult> {
        self.anonymous("keyed_state_delete")?;
        schema(&self.engine.snapshot(), project_id, scope_id, keyed_state)?;
        self.commit(delete_mutation(project_id, scope_id, keyed_state, key))
            .await
    }

    /// Read the row of `key`, let `update_fn` decide (`Some`: write it, `None`: delete), and
    /// commit only if the row has not changed since the read (else `AssertionFailed`).
    pub async fn keyed_state_update<F>(
        &self,
        project_id: &str,
        scope_id: &str,
        keyed_state: &str,
        key: Value,
        update_fn: F,
    ) -> Result<CommitResult>
    where
        F: FnOnce(Option<Row>) -> Result<Option<Row>>,
    {
        self.anonymous("keyed_state_update")?;
        let snapshot = self.engine.snapshot();
        let schema = schema(&snapshot, project_id, scope_id, keyed_state)?;
        let (current, guard) =
            read_for_update(&snapshot, &schema, project_id, scope_id, keyed_state, &key)?;
        let mutation = match update_fn(current)? {
            Some(row) => {
                check_row(&schema, &key, &row)?;
                write_mutation(project_id, scope_id, keyed_state, key, row)
            }
            None => delete_mutation(project_id, scope_id, keyed_state, key),
        };
        self.commit_envelope(TransactionEnvelope {
            assertions: vec![guard],
            write_intent: WriteIntent {
                mutations: vec![mutation],
            },
            base_seq: snapshot.seq(),
            ..TransactionEnvelope::default()
        })
        .await
    }

    /// Rows in the order of a BTree index, starting with `req.prefix`, after skipping
    /// `req.offset`, at most `req.limit`.
    pub async fn keyed_state_query_index(
        &self,
        project_id: &str,
        scope_id: &str,
        keyed_state: &str,
        req: KeyedStateQueryRequest,
        consistency: ConsistencyMode,
    ) -> Result<Vec<Row>> {
        self.anonymous("keyed_state_query_index")?;
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let snapshot = self.snapshot_for(consistency)?;
        let schema = schema(&snapshot, project_id, scope_id, keyed_state)?;
        let mut out = Vec::new();
        // Entries skipped count as examined: at most `max_scan_rows` of them in all.
        let bound = usize::try_from(self.config.max_scan_rows).unwrap_or(usize::MAX);
        for (examined, pk) in
            index_keys(&snapshot, &schema, &req.index_name, &req.prefix)?.enumerate()
        {
            if out.len() == req.limit {
                break;
            }
            if examined >= bound {
                return Err(scan_bound(bound));
            }
            let pk = pk?;
            if examined < req.offset {
                continue;
            }
            if let Some(row) = rows::read_row(&snapshot, &schema, &pk)? {
                out.push(row);
            }
        }
        Ok(out)
    }

    /// The 0-based position of the row of `key` in the order of a BTree index.
    #[allow(clippy::too_many_arguments)]
    pub async fn keyed_state_index_rank(
        &self,
        project_id: &str,
        scope_id: &str,
        keyed_state: &str,
        index_name: &str,
        key: Value,
        consistency: ConsistencyMode,
    ) -> Result<Option<usize>> {
        self.anonymous("keyed_state_index_rank")?;
        let snapshot = self.snapshot_for(consistency)?;
        let schema = schema(&snapshot, project_id, scope_id, keyed_state)?;
        let target = encode_key(&[key]);
        // A rank is found by walking the index: at most `max_scan_rows` entries.
        let bound = usize::try_from(self.config.max_scan_rows).unwrap_or(usize::MAX);
        for (rank, pk) in index_keys(&snapshot, &schema, index_name, &[])?.enumerate() {
            if rank >= bound {
                return Err(scan_bound(bound));
            }
            if pk? == target {
                return Ok(Some(rank));
            }
        }
        Ok(None)
    }
}
