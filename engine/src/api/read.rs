//! Reads: queries on a snapshot chosen by consistency mode, and read transactions.

use std::sync::Arc;

use aedb_catalog::schema::TableSchema;
use aedb_pager::Snapshot;
use aedb_query::exec::{execute, PageRequest, DEFAULT_PAGE_ROWS};
use aedb_query::plan::{ConsistencyMode, Query, QueryOptions, QueryResult};
use aedb_query::planner::Plan;
use aedb_query::QueryError;

use crate::commit::kv::KvEntry;
use crate::cursor::PageCursor;
use crate::permission::CallerContext;
use crate::stored;
use crate::stored::catalog;

use super::AedbInstance;

impl AedbInstance {
    // ---- reads ----

    /// The snapshot a consistency mode names.
    pub(super) fn snapshot_for(
        &self,
        consistency: ConsistencyMode,
    ) -> std::result::Result<Snapshot, QueryError> {
        match consistency {
            ConsistencyMode::AtLatest => Ok(self.engine.snapshot()),
            ConsistencyMode::AtCheckpoint => Ok(self.engine.checkpoint_snapshot()),
            ConsistencyMode::AtSeq(seq) => {
                let head = self.engine.visible_head_seq();
                if seq > head {
                    return Err(QueryError::SeqNotYetVisible {
                        requested: seq,
                        current: head,
                    });
                }
                self.engine
                    .snapshot_at(seq)
                    .map_err(|oldest| QueryError::SeqGarbageCollected {
                        requested: seq,
                        oldest_available: oldest,
                    })
            }
        }
    }

    /// The table's schema as of `snapshot`. A table created after that version has no rows
    /// in it: it is read with its current schema and answers with no rows.
    pub(super) fn schema_at(
        &self,
        snapshot: &Snapshot,
        project: &str,
        scope: &str,
        table: &str,
    ) -> std::result::Result<(Arc<TableSchema>, bool), QueryError> {
        let name = (project, scope, table);
        if let Some(schema) = self
            .schemas
            .get(name, snapshot.seq(), || self.engine.watched_changed_at())
        {
            return Ok((schema, true));
        }
        let watermark = self.engine.watched_changed_at();
        if let Some(schema) = catalog::find_table(snapshot, project, scope, table)? {
            let schema = Arc::new(schema);
            self.schemas
                .insert(name, snapshot.seq(), watermark, Arc::clone(&schema));
            return Ok((schema, true));
        }
        match catalog::find_table(&self.engine.snapshot(), project, scope, table)? {
            Some(schema) => Ok((Arc::new(schema), false)),
            None => Err(QueryError::TableNotFound {
                project_id: project.into(),
                table: table.into(),
            }),
        }
    }

    pub async fn query(
        &self,
        project_id: &str,
        scope_id: &str,
        query: Query,
    ) -> std::result::Result<QueryResult, QueryError> {
        self.query_with_options(project_id, scope_id, query, QueryOptions::default())
            .await
    }

    /// One page of the answer. Pages hold the query's `limit` rows (100 without one) and
    /// examine at most `max_scan_rows` rows; `cursor` continues at the same snapshot.
    pub async fn query_with_options(
        &self,
        project_id: &str,
        scope_id: &str,
        query: Query,
        options: QueryOptions,
    ) -> std::result::Result<QueryResult, QueryError> {
        self.anonymous("query")?;
        let cursor = options
            .cursor
            .as_deref()
            .map(|c| self.cursors.decode(c))
            .transpose()?;
        let consistency = cursor.as_ref().map_or(options.consistency, |c| {
            ConsistencyMode::AtSeq(c.snapshot_seq)
        });
        let snapshot = self.snapshot_for(consistency)?;
        self.query_on(&snapshot, project_id, scope_id, &query, cursor)
    }

    /// [`Self::query_with_options`] as `caller`: refused with `PermissionDenied` unless the
    /// caller may read the query's table and every joined table. Without a caller, the
    /// anonymous query.
    pub async fn query_with_options_as(
        &self,
        caller: Option<&CallerContext>,
        project_id: &str,
        scope_id: &str,
        query: Query,
        options: QueryOptions,
    ) -> std::result::Result<QueryResult, QueryError> {
        let Some(caller) = caller else {
            return self
                .query_with_options(project_id, scope_id, query, options)
                .await;
        };
        let cursor = options
            .cursor
            .as_deref()
            .map(|c| self.cursors.decode(c))
            .transpose()?;
        let consistency = cursor.as_ref().map_or(options.consistency, |c| {
            ConsistencyMode::AtSeq(c.snapshot_seq)
        });
        let mut query = query;
        self.check_query(caller, project_id, scope_id, &mut query)?;
        let snapshot = self.snapshot_for(consistency)?;
        self.query_on(&snapshot, project_id, scope_id, &query, cursor)
    }

    /// One page of `query` on a given snapshot, continuing after `cursor`.
    fn query_on(
        &self,
        snapshot: &Snapshot,
        project_id: &str,
        scope_id: &str,
        query: &Query,
        cursor: Option<PageCursor>,
    ) -> std::result::Result<QueryResult, QueryError> {
        let (schema, existed) = self.schema_at(snapshot, project_id, scope_id, &query.table)?;
        let page_size = cursor
            .as_ref()
            .map(|c| c.page_size as usize)
            .or(query.limit)
            .unwrap_or(DEFAULT_PAGE_ROWS)
            .max(1);
        let request = PageRequest {
            after: cursor.map(|c| c.last_key),
            page_size,
            max_scan_rows: self.config.max_scan_rows,
        };
        let page = if !query.joins.is_empty() {
            let joined = query
                .joins
                .iter()
                .map(|j| {
                    self.schema_at(snapshot, project_id, scope_id, &j.table)
                        .map(|(s, _)| s)
                })
                .collect::<std::result::Result<Vec<_>, _>>()?;
            let joined: Vec<&TableSchema> = joined.iter().map(|s| s.as_ref()).collect();
            aedb_query::join::execute_join(snapshot, &schema, &joined, query, &request)?
        } else if existed {
            execute(snapshot, &schema, query, &request)?
        } else {
            // Validate against the current schema, answer with the empty table it was.
            let mut page = execute(snapshot, &schema, query, &request)?;
            page.rows.clear();
            page.more = false;
            page
        };
        let cursor = match (&page.last_key, page.more) {
            (Some(last), true) => Some(self.cursors.encode(&PageCursor {
                snapshot_seq: snapshot.seq(),
                page_size: page_size as u32,
                last_key: last.clone(),
            })),
            _ => None,
        };
        Ok(QueryResult {
            rows: page.rows,
            columns: page.columns,
            rows_examined: page.rows_examined,
            truncated: cursor.is_some(),
            cursor,
            snapshot_seq: snapshot.seq(),
            materialized_seq: None,
        })
    }

    /// Pin a snapshot for several reads that must agree with each other.
    pub async fn begin_read_tx(
        &self,
        consistency: ConsistencyMode,
    ) -> std::result::Result<ReadTx<'_>, QueryError> {
        self.anonymous("begin_read_tx")?;
        Ok(ReadTx {
            instance: self,
            snapshot: self.snapshot_for(consistency)?,
            caller: None,
        })
    }

    /// [`Self::begin_read_tx`] as `caller`: each read through it is checked as its `_as` form.
    pub async fn begin_read_tx_as(
        &self,
        caller: &CallerContext,
        consistency: ConsistencyMode,
    ) -> std::result::Result<ReadTx<'_>, QueryError> {
        caller.check_external()?;
        Ok(ReadTx {
            instance: self,
            snapshot: self.snapshot_for(consistency)?,
            caller: Some(caller.clone()),
        })
    }

    /// Which access path the planner picks for `query`, and why.
    pub async fn explain_query(
        &self,
        project_id: &str,
        scope_id: &str,
        query: Query,
    ) -> std::result::Result<Plan, QueryError> {
        self.anonymous("explain_query")?;
        self.explain(project_id, scope_id, query)
    }

    /// [`Self::explain_query`] as `caller`, who needs to be able to read the table; without
    /// a caller, the anonymous form.
    pub async fn explain_query_as(
        &self,
        caller: Option<&CallerContext>,
        project_id: &str,
        scope_id: &str,
        query: Query,
    ) -> std::result::Result<Plan, QueryError> {
        match caller {
            Some(caller) => {
                self.check_table_read(caller, project_id, scope_id, &[query.table.as_str()])?
            }
            None => self.anonymous("explain_query")?,
        }
        self.explain(project_id, scope_id, query)
    }

    fn explain(
        &self,
        project_id: &str,
        scope_id: &str,
        query: Query,
    ) -> std::result::Result<Plan, QueryError> {
        let snapshot = self.engine.snapshot();
        let (schema, _) = self.schema_at(&snapshot, project_id, scope_id, &query.table)?;
        Ok(aedb_query::planner::plan(&schema, query.predicate.as_ref()))
    }
}

/// A pinned snapshot: every read through it sees the same version, however many commits
/// happen meanwhile.
pub struct ReadTx<'a> {
    instance: &'a AedbInstance,
    snapshot: Snapshot,
    /// Whose reads these are (`begin_read_tx_as`); None: anonymous.
    caller: Option<CallerContext>,
}

impl ReadTx<'_> {
    /// The commit sequence of the pinned version.
    pub fn snapshot_seq(&self) -> u64 {
        self.snapshot.seq()
    }

    /// One page of `query` at the pinned version (`cursor` from an earlier page continues it).
    pub async fn query(
        &self,
        project_id: &str,
        scope_id: &str,
        query: Query,
        cursor: Option<String>,
    ) -> std::result::Result<QueryResult, QueryError> {
        let mut query = query;
        if let Some(caller) = &self.caller {
            self.instance
                .check_query(caller, project_id, scope_id, &mut query)?;
        }
        let cursor = cursor
            .as_deref()
            .map(|c| self.instance.cursors.decode(c))
            .transpose()?;
        self.instance
            .query_on(&self.snapshot, project_id, scope_id, &query, cursor)
    }

    pub async fn kv_get(
        &self,
        project_id: &str,
        scope_id: &str,
        key: &[u8],
    ) -> std::result::Result<Option<KvEntry>, QueryError> {
        if let Some(caller) = &self.caller {
            self.instance
                .check_kv_read(caller, project_id, scope_id, key)?;
        }
        Ok(stored::kv::get(&self.snapshot, project_id, scope_id, key)?)
    }
}
