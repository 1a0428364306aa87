//! Read sets (`aedb::commit::read_set`): what a transaction read, with the versions it saw, so
//! its commit aborts with `Conflict` when any of it changed since.
//!
//! Versions are commit sequences: a table row's version is stored in its header (FORMAT.md),
//! a KV entry's beside its value; 0 means never written (or missing). At commit, inside the
//! writer, before the assertions and the mutations:
//! - a point conflicts when its current version is above `version_at_read`, or above the
//!   envelope's `base_seq` (when one is given, i.e. not 0), or when it existed at the read
//!   (version > 0) and is gone now;
//! - a range conflicts when the newest version of the rows in it is above `max_version_at_read`
//!   (or `base_seq`), or when its table / KV space lost a key after the read (after both
//!   `structural_version_at_read` and `base_seq`). Deletes are tracked per tree, not per range (`Engine::structural_version`):
//!   a delete anywhere in the table counts, which can abort a commit that would have been safe
//!   but never lets a lost row through. A table range also conflicts when any catalog entry
//!   was deleted after the read (a table dropped and created again has a new tree).

use std::ops::Bound;

use aedb_catalog::keys::encode_key;
use aedb_catalog::namespace::{kv_tree, kv_tree_name, table_tree};
use aedb_catalog::rows::row_version;
use aedb_catalog::types::Value;
use aedb_pager::store::{bound_ref, prefix_end};

use super::kv::KvEntry;
use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};
use crate::stored::catalog::load_table;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum ReadKey {
    TableRow {
        project_id: String,
        scope_id: String,
        table_name: String,
        primary_key: Vec<Value>,
    },
    KvKey {
        project_id: String,
        scope_id: String,
        key: Vec<u8>,
    },
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub enum ReadBound<T> {
    #[default]
    Unbounded,
    Included(T),
    Excluded(T),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum ReadRange {
    /// Bounds are primary-key tuples; a tuple shorter than the key is a prefix (an included
    /// end takes every key starting with it).
    TableRange {
        project_id: String,
        scope_id: String,
        table_name: String,
        start: ReadBound<Vec<Value>>,
        end: ReadBound<Vec<Value>>,
    },
    KvRange {
        project_id: String,
        scope_id: String,
        start: ReadBound<Vec<u8>>,
        end: ReadBound<Vec<u8>>,
    },
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReadSetEntry {
    pub key: ReadKey,
    pub version_at_read: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReadRangeEntry {
    pub range: ReadRange,
    pub max_version_at_read: u64,
    pub structural_version_at_read: u64,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct ReadSet {
    pub points: Vec<ReadSetEntry>,
    pub ranges: Vec<ReadRangeEntry>,
}

impl ReadSet {
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.ranges.is_empty()
    }
}

/// The current version of a point (0 when missing), and whether it exists.
pub(crate) fn point_version(txn: &mut LoggedTxn, key: &ReadKey) -> Result<Option<u64>> {
    match key {
        ReadKey::TableRow {
            project_id,
            scope_id,
            table_name,
            primary_key,
        } => {
            let schema = load_table(txn, project_id, scope_id, table_name)?;
            txn.get(&table_tree(schema.table_id), &encode_key(primary_key))?
                .map(|bytes| row_version(&bytes).map_err(|e| AedbError::Corruption(e.to_string())))
                .transpose()
        }
        ReadKey::KvKey {
            project_id,
            scope_id,
            key,
        } => Ok(txn
            .get(&kv_tree_name(project_id, scope_id), key)?
            .map(KvEntry::decode)
            .transpose()?
            .map(|e| e.version)),
    }
}

/// The tree a range reads and its byte bounds (`empty`: nothing can be in it).
struct ByteRange {
    tree: String,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    empty: bool,
}

fn range_bounds(txn: &mut LoggedTxn, range: &ReadRange) -> Result<ByteRange> {
    Ok(match range {
        ReadRange::TableRange {
            project_id,
            scope_id,
            table_name,
            start,
            end,
        } => {
            let schema = load_table(txn, project_id, scope_id, table_name)?;
            let width = schema.primary_key.len();
            let partial = |v: &Vec<Value>| v.len() < width;
            let after_prefix = |v: &Vec<Value>| {
                prefix_end(&encode_key(v)).map_or(Bound::Unbounded, Bound::Excluded)
            };
            let lower = match start {
                ReadBound::Unbounded => Bound::Unbounded,
                ReadBound::Included(v) => Bound::Included(encode_key(v)),
                ReadBound::Excluded(v) if partial(v) => match after_prefix(v) {
                    Bound::Excluded(k) => Bound::Included(k),
                    // Nothing sorts after a prefix of all 0xFF bytes: the range is empty.
                    _ => {
                        return Ok(ByteRange {
                            tree: table_tree(schema.table_id),
                            lower: Bound::Unbounded,
                            upper: Bound::Unbounded,
                            empty: true,
                        })
                    }
                },
                ReadBound::Excluded(v) => Bound::Excluded(encode_key(v)),
            };
            let upper = match end {
                ReadBound::Unbounded => Bound::Unbounded,
                ReadBound::Included(v) if partial(v) => after_prefix(v),
                ReadBound::Included(v) => Bound::Included(encode_key(v)),
                ReadBound::Excluded(v) => Bound::Excluded(encode_key(v)),
            };
            ByteRange {
                tree: table_tree(schema.table_id),
                lower,
                upper,
                empty: false,
            }
        }
        ReadRange::KvRange {
            project_id,
            scope_id,
            start,
            end,
        } => {
            let owned = |b: &ReadBound<Vec<u8>>| match b {
                ReadBound::Unbounded => Bound::Unbounded,
                ReadBound::Included(k) => Bound::Included(k.clone()),
                ReadBound::Excluded(k) => Bound::Excluded(k.clone()),
            };
            ByteRange {
                tree: kv_tree(project_id, scope_id),
                lower: owned(start),
                upper: owned(end),
                empty: false,
            }
        }
    })
}

/// The newest version among the entries of `range` (0 when empty), reading at most
/// `max_rows` entries.
pub(crate) fn range_max_version(
    txn: &mut LoggedTxn,
    range: &ReadRange,
    max_rows: u64,
) -> Result<(String, u64)> {
    let ByteRange {
        tree,
        lower,
        upper,
        empty,
    } = range_bounds(txn, range)?;
    if empty {
        return Ok((tree, 0));
    }
    let is_table = matches!(range, ReadRange::TableRange { .. });
    let mut newest = 0u64;
    let mut seen = 0u64;
    for item in txn.range(&tree, bound_ref(&lower), bound_ref(&upper), false)? {
        let (_, bytes) = item?;
        seen += 1;
        if seen > max_rows {
            return Err(AedbError::ScanBoundExceeded {
                estimated_rows: seen,
                max_scan_rows: max_rows,
            });
        }
        let version = if is_table {
            row_version(&bytes).map_err(|e| AedbError::Corruption(e.to_string()))?
        } else {
            KvEntry::decode(bytes)?.version
        };
        newest = newest.max(version);
    }
    Ok((tree, newest))
}

/// Abort with `Conflict` when anything in `read_set` changed (see the module comment).
pub(crate) fn revalidate(
    txn: &mut LoggedTxn,
    read_set: &ReadSet,
    base_seq: u64,
    max_rows: u64,
) -> Result<()> {
    let newer = |now: u64, at_read: u64| now > at_read || (base_seq > 0 && now > base_seq);
    for point in &read_set.points {
        match point_version(txn, &point.key)? {
            Some(now) if newer(now, point.version_at_read) => {
                return Err(AedbError::Conflict(format!(
                    "read set conflict at seq {now}"
                )));
            }
            None if point.version_at_read > 0 => {
                return Err(AedbError::Conflict(format!(
                    "read set conflict: {:?} deleted since seq {}",
                    point.key, point.version_at_read
                )));
            }
            _ => {}
        }
    }
    for entry in &read_set.ranges {
        let (tree, newest) = range_max_version(txn, &entry.range, max_rows)?;
        if newer(newest, entry.max_version_at_read) {
            return Err(AedbError::Conflict(format!(
                "range read set conflict at seq {newest}"
            )));
        }
        // Structural versions are per tree and floored at the open, so the version seen at the
        // read may be coarse: a delete counts when it came after the read, i.e. after both.
        let read_at = entry.structural_version_at_read.max(base_seq);
        let structural = txn.structural_version(&tree);
        if structural > read_at {
            return Err(AedbError::Conflict(format!(
                "range structural conflict at seq {structural}"
            )));
        }
        // A table dropped and created again under its name has a new tree: the old tree's
        // deletes are not under this name. Any catalog delete since the read counts.
        if let ReadRange::TableRange { .. } = entry.range {
            let catalog = crate::stored::catalog::structural_version(txn);
            if catalog > read_at {
                return Err(AedbError::Conflict(format!(
                    "range structural conflict: the catalog lost an entry at seq {catalog}"
                )));
            }
        }
    }
    Ok(())
}

/// The read set of `mutation` as planned at `snapshot` (`preflight_plan`): the rows and KV keys
/// it writes (`touched`), at their versions there, unless it only adds commutatively; and, for
/// predicate writes, the whole table as a range read at the snapshot.
pub(crate) fn plan_read_set(
    snapshot: &aedb_pager::Snapshot,
    mutation: &super::validation::Mutation,
    touched: &[(String, Vec<u8>)],
) -> Result<ReadSet> {
    let mut read_set = ReadSet::default();
    if mutation.is_commutative() {
        return Ok(read_set);
    }
    let table = mutation.target_table();
    let table_id = match table {
        Some((project, scope, name)) => {
            crate::stored::catalog::find_table(snapshot, project, scope, name)?
                .map(|schema| schema.table_id)
        }
        None => None,
    };
    for (tree, key) in touched {
        let version = |bytes: Option<Vec<u8>>, table: bool| -> Result<u64> {
            Ok(match bytes {
                None => 0,
                Some(b) if table => {
                    row_version(&b).map_err(|e| AedbError::Corruption(e.to_string()))?
                }
                Some(b) => KvEntry::decode(b)?.version,
            })
        };
        if let (Some((project, scope, name)), Some(id)) = (table, table_id) {
            if *tree == table_tree(id) {
                let primary_key = aedb_catalog::keys::decode_key(key)
                    .map_err(|e| AedbError::Corruption(e.to_string()))?;
                read_set.points.push(ReadSetEntry {
                    key: ReadKey::TableRow {
                        project_id: project.into(),
                        scope_id: scope.into(),
                        table_name: name.into(),
                        primary_key,
                    },
                    version_at_read: version(snapshot.get(tree, key)?, true)?,
                });
                continue;
            }
        }
        // KV spaces are named `kv:<project>:<scope>`; identifiers hold no ':'.
        let mut parts = tree.splitn(3, ':');
        if let (Some("kv"), Some(project), Some(scope)) = (parts.next(), parts.next(), parts.next())
        {
            read_set.points.push(ReadSetEntry {
                key: ReadKey::KvKey {
                    project_id: project.into(),
                    scope_id: scope.into(),
                    key: key.clone(),
                },
                version_at_read: version(snapshot.get(tree, key)?, false)?,
            });
        }
    }
    if let (true, Some((project, scope, name))) = (mutation.selects_by_predicate(), table) {
        // Read at the snapshot: any later write or delete in the table conflicts.
        read_set.ranges.push(ReadRangeEntry {
            range: ReadRange::TableRange {
                project_id: project.into(),
                scope_id: scope.into(),
                table_name: name.into(),
                start: ReadBound::Unbounded,
                end: ReadBound::Unbounded,
            },
            max_version_at_read: snapshot.seq(),
            structural_version_at_read: snapshot.seq(),
        });
    }
    Ok(read_set)
}
