//! `AedbInstance`: the public API of the README — namespaces, DDL, mutations, queries, KV —
//! over the durable engine. Every write is a `Mutation` applied inside one commit of the
//! engine's pipeline; every read runs on a pinned snapshot chosen by its `ConsistencyMode`.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aedb_catalog::keys::encode_key;
use aedb_catalog::namespace::DEFAULT_SCOPE_ID;
use aedb_catalog::schema::TableSchema;
use aedb_catalog::{DdlOperation, DdlResult};
use aedb_pager::store::prefix_end;
use aedb_pager::{CheckpointInfo, Snapshot};
use aedb_query::exec::{execute, PageRequest, DEFAULT_PAGE_ROWS};
use aedb_query::plan::{ConsistencyMode, Query, QueryOptions, QueryResult};
use aedb_query::planner::Plan;
use aedb_query::QueryError;

use crate::commit::apply::{apply, Applied, Limits};
use crate::commit::envelope::{apply_envelope, EnvelopeOutcome, IdempotencyWindow};
use crate::commit::kv::KvEntry;
use crate::commit::read_set::{plan_read_set, ReadSet};
use crate::commit::tables::RowLimits;
use crate::commit::validation::{
    KvU256MutatorOp, KvU64MissingPolicy, KvU64MutatorOp, KvU64OverflowPolicy, KvU64UnderflowPolicy,
};
use crate::commit::{
    ActionCommitOutcome, ActionCommitResult, ActionEnvelopeRequest, CommitResult,
    IdempotencyOutcome, Mutation, TransactionEnvelope, WriteIntent,
};
use crate::config::AedbConfig;
use crate::cursor::{CursorCodec, PageCursor};
use crate::durable::Engine;
use crate::error::{AedbError, ResourceType, Result};
pub use crate::permission::CallerContext;
use crate::schema_cache::SchemaCache;
use crate::stored;
use crate::stored::catalog;
use crate::CommitFinality;

/// Advisory outcome of `preflight`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreflightResult {
    Ok { affected_rows: u64 },
    Err { reason: String },
}

/// Advisory plan of a mutation: whether it would apply now, and what it would touch. Commit
/// it guarded with `TransactionEnvelope { read_set, base_seq, write_intent, .. }` to have it
/// abort with `Conflict` if anything it read changes first.
#[derive(Debug, Clone, PartialEq)]
pub struct PreflightPlan {
    pub valid: bool,
    /// What the mutation reads, at the versions seen at `base_seq`.
    pub read_set: ReadSet,
    pub write_intent: WriteIntent,
    /// The version the plan was made against.
    pub base_seq: u64,
    pub estimated_affected_rows: u64,
    pub errors: Vec<String>,
    /// (B+tree, key) pairs the mutation would write or delete.
    pub touched_keys: Vec<(String, Vec<u8>)>,
}

/// A page of a KV scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvScanResult {
    pub entries: Vec<(Vec<u8>, KvEntry)>,
    /// Pass back to continue after the last entry (None on the last page).
    pub cursor: Option<String>,
    pub snapshot_seq: u64,
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableInfo {
    pub table_name: String,
    pub column_count: u32,
    pub index_count: u32,
    pub row_count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeInfo {
    pub scope_id: String,
    pub table_count: u32,
    pub kv_key_count: u64,
    pub created_at_micros: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectInfo {
    pub project_id: String,
    pub scope_count: u32,
    pub created_at_micros: u64,
}

pub struct AedbInstance {
    engine: Arc<Engine>,
    config: AedbConfig,
    cursors: CursorCodec,
    schemas: SchemaCache,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl AedbInstance {
    /// Open (creating when empty) the database in `dir`, recovering it after a crash.
    pub fn open(config: AedbConfig, dir: &Path) -> Result<Self> {
        let engine = Engine::open(config.clone(), dir)?;
        catalog::watch(&engine)?;
        let cursors = CursorCodec::for_dir(dir, config.hmac_key, false)?;
        Ok(AedbInstance {
            engine: Arc::new(engine),
            config,
            cursors,
            schemas: SchemaCache::default(),
        })
    }

    /// Open for reading only: no byte of the directory changes and no lock is taken, so it
    /// works beside a live process (seen as of its newest durable log frame). Writes return
    /// `AedbError::ReadOnly`.
    pub fn open_read_only(config: AedbConfig, dir: &Path) -> Result<Self> {
        let engine = Engine::open_read_only(config.clone(), dir)?;
        catalog::watch(&engine)?;
        let cursors = CursorCodec::for_dir(dir, config.hmac_key, true)?;
        Ok(AedbInstance {
            engine: Arc::new(engine),
            config,
            cursors,
            schemas: SchemaCache::default(),
        })
    }

    /// The durable engine underneath (for storage-level tools and tests).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    fn limits(&self) -> Limits {
        Limits {
            rows: RowLimits {
                max_table_value_bytes: self.config.max_table_value_bytes,
                max_scan_rows: self.config.max_scan_rows,
                max_batch_rows: self.config.max_batch_rows,
            },
            max_kv_key_bytes: self.config.max_kv_key_bytes,
            max_kv_value_bytes: self.config.max_kv_value_bytes,
            now_micros: now_micros(),
            idempotency_window: IdempotencyWindow {
                commits: self.config.idempotency_window_commits,
                micros: self
                    .config
                    .idempotency_window_seconds
                    .saturating_mul(1_000_000),
            },
        }
    }

    // ---- writes ----

    /// Commit one mutation; returns once it is visible.
    pub async fn commit(&self, mutation: Mutation) -> Result<CommitResult> {
        self.commit_with_finality(mutation, CommitFinality::Visible)
            .await
    }

    /// Commit one mutation; `Durable` waits for its WAL frame to be fsynced.
    pub async fn commit_with_finality(
        &self,
        mutation: Mutation,
        finality: CommitFinality,
    ) -> Result<CommitResult> {
        self.commit_many_with_finality(vec![mutation], finality)
            .await
            .map(|(r, _)| r)
    }

    /// Commit one mutation, validated against the latest state inside the writer (every commit
    /// is: there is no window between validation and apply).
    pub async fn commit_with_preflight(&self, mutation: Mutation) -> Result<CommitResult> {
        self.commit(mutation).await
    }

    /// Commit many mutations atomically: all or nothing, one sequence number.
    pub async fn commit_many_atomic(&self, mutations: Vec<Mutation>) -> Result<CommitResult> {
        if mutations.is_empty() {
            return Err(AedbError::Validation(
                "transaction envelope has no mutations".into(),
            ));
        }
        self.commit_many_with_finality(mutations, CommitFinality::Visible)
            .await
            .map(|(r, _)| r)
    }

    async fn commit_many_with_finality(
        &self,
        mutations: Vec<Mutation>,
        finality: CommitFinality,
    ) -> Result<(CommitResult, Vec<Applied>)> {
        let limits = self.limits();
        let outcome = self
            .engine
            .commit(finality, move |txn| {
                mutations
                    .iter()
                    .map(|m| apply(txn, m, &limits))
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
        Ok((
            CommitResult {
                commit_seq: outcome.commit_seq,
                durable_head_seq: outcome.durable_head_seq,
                idempotency: IdempotencyOutcome::Applied,
                canonical_commit_seq: outcome.commit_seq,
            },
            outcome.value,
        ))
    }

    /// Commit an envelope: its mutations atomically, after its assertions hold, once per
    /// idempotency key (a replay returns the first commit, marked `Duplicate`).
    pub async fn commit_envelope(&self, envelope: TransactionEnvelope) -> Result<CommitResult> {
        self.commit_envelope_with_finality(envelope, CommitFinality::Visible)
            .await
    }

    pub async fn commit_envelope_with_finality(
        &self,
        envelope: TransactionEnvelope,
        finality: CommitFinality,
    ) -> Result<CommitResult> {
        let limits = self.limits();
        let finality = if envelope.write_class == crate::commit::WriteClass::Economic {
            CommitFinality::Durable
        } else {
            finality
        };
        let outcome = self
            .engine
            .commit(finality, move |txn| apply_envelope(txn, &envelope, &limits))
            .await?;
        Ok(match outcome.value {
            EnvelopeOutcome::Applied => CommitResult {
                commit_seq: outcome.commit_seq,
                durable_head_seq: outcome.durable_head_seq,
                idempotency: IdempotencyOutcome::Applied,
                canonical_commit_seq: outcome.commit_seq,
            },
            EnvelopeOutcome::Duplicate(original) => CommitResult {
                commit_seq: original,
                // The real durable head: a replay answered Visible in Batch or OsBuffered mode
                // may come before the original is durable, and must not claim it is.
                durable_head_seq: outcome.durable_head_seq,
                idempotency: IdempotencyOutcome::Duplicate,
                canonical_commit_seq: original,
            },
        })
    }

    /// One action: effects and metadata in one atomic, idempotent commit.
    pub async fn commit_action_envelope(
        &self,
        request: ActionEnvelopeRequest,
    ) -> Result<ActionCommitResult> {
        let envelope = TransactionEnvelope {
            caller: request.caller,
            idempotency_key: Some(request.idempotency_key),
            write_class: request.write_class,
            assertions: request.assertions,
            read_set: ReadSet::default(),
            write_intent: WriteIntent {
                mutations: request.mutations,
            },
            base_seq: request.base_seq,
        };
        let result = self.commit_envelope(envelope).await?;
        Ok(ActionCommitResult {
            commit_seq: result.commit_seq,
            durable_head_seq: result.durable_head_seq,
            outcome: match result.idempotency {
                IdempotencyOutcome::Applied => ActionCommitOutcome::Applied,
                IdempotencyOutcome::Duplicate => ActionCommitOutcome::Duplicate,
            },
        })
    }

    /// Commit a DDL operation; `applied` is false when an if-(not-)exists guard made it a no-op.
    pub async fn commit_ddl(&self, op: DdlOperation) -> Result<DdlResult> {
        let (result, applied) = self
            .commit_many_with_finality(vec![Mutation::Ddl(op)], CommitFinality::Visible)
            .await?;
        Ok(DdlResult {
            applied: applied.first().and_then(|a| a.ddl_applied).unwrap_or(false),
            seq: result.commit_seq,
        })
    }

    /// What the mutation would do against the latest state (advisory: state may change).
    pub async fn preflight(&self, mutation: Mutation) -> PreflightResult {
        let limits = self.limits();
        match self
            .engine
            .dry_run(move |txn| apply(txn, &mutation, &limits))
            .await
        {
            Ok(applied) => PreflightResult::Ok {
                affected_rows: applied.affected_rows,
            },
            Err(err) => PreflightResult::Err {
                reason: err.to_string(),
            },
        }
    }

    /// Plan a mutation against the latest state without committing it (advisory).
    pub async fn preflight_plan(&self, mutation: Mutation) -> PreflightPlan {
        let limits = self.limits();
        let snapshot = self.engine.snapshot();
        let base_seq = snapshot.seq();
        let write_intent = WriteIntent {
            mutations: vec![mutation.clone()],
        };
        let planned = self
            .engine
            .dry_run(move |txn| {
                let applied = apply(txn, &mutation, &limits)?;
                let touched = txn.touched();
                let read_set = plan_read_set(&snapshot, &mutation, &touched)?;
                Ok((applied.affected_rows, touched, read_set))
            })
            .await;
        match planned {
            Ok((affected, touched_keys, read_set)) => PreflightPlan {
                valid: true,
                read_set,
                write_intent,
                base_seq,
                estimated_affected_rows: affected,
                errors: Vec::new(),
                touched_keys,
            },
            Err(err) => PreflightPlan {
                valid: false,
                read_set: ReadSet::default(),
                write_intent,
                base_seq,
                estimated_affected_rows: 0,
                errors: vec![err.to_string()],
                touched_keys: Vec::new(),
            },
        }
    }

    // ---- namespaces ----

    /// Create a project (a no-op if it exists) and its default scope `app`.
    pub async fn create_project(&self, project_id: &str) -> Result<()> {
        self.commit_ddl(DdlOperation::CreateProject {
            project_id: project_id.into(),
            owner_id: None,
            if_not_exists: true,
        })
        .await
        .map(|_| ())
    }

    pub async fn drop_project(&self, project_id: &str) -> Result<()> {
        self.commit_ddl(DdlOperation::DropProject {
            project_id: project_id.into(),
            if_exists: true,
        })
        .await
        .map(|_| ())
    }

    /// Create a scope (a no-op if it exists); the project must exist.
    pub async fn create_scope(&self, project_id: &str, scope_id: &str) -> Result<()> {
        self.commit_ddl(DdlOperation::CreateScope {
            project_id: project_id.into(),
            scope_id: scope_id.into(),
            owner_id: None,
            if_not_exists: true,
        })
        .await
        .map(|_| ())
    }

    pub async fn drop_scope(&self, project_id: &str, scope_id: &str) -> Result<()> {
        self.commit_ddl(DdlOperation::DropScope {
            project_id: project_id.into(),
            scope_id: scope_id.into(),
            if_exists: true,
        })
        .await
        .map(|_| ())
    }

    pub async fn project_exists(&self, project_id: &str) -> Result<bool> {
        Ok(catalog::get_project(&self.engine.snapshot(), project_id)?.is_some())
    }

    pub async fn scope_exists(&self, project_id: &str, scope_id: &str) -> Result<bool> {
        Ok(catalog::get_scope(&self.engine.snapshot(), project_id, scope_id)?.is_some())
    }

    pub async fn table_exists(
        &self,
        project_id: &str,
        scope_id: &str,
        table: &str,
    ) -> Result<bool> {
        Ok(catalog::find_table(&self.engine.snapshot(), project_id, scope_id, table)?.is_some())
    }

    pub async fn index_exists(
        &self,
        project_id: &str,
        scope_id: &str,
        table: &str,
        index: &str,
    ) -> Result<bool> {
        match self.describe_table(project_id, scope_id, table).await {
            Ok(schema) => Ok(schema.index(index).is_some()),
            Err(AedbError::NotFound { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    pub async fn list_projects(&self) -> Result<Vec<ProjectInfo>> {
        let snapshot = self.engine.snapshot();
        let mut out = Vec::new();
        for entry in catalog::projects(&snapshot)? {
            let scope_count = catalog::scope_count(&snapshot, &entry.project_id)? as u32;
            out.push(ProjectInfo {
                project_id: entry.project_id,
                scope_count,
                created_at_micros: entry.created_at_micros,
            });
        }
        Ok(out)
    }

    pub async fn list_scopes(&self, project_id: &str) -> Result<Vec<String>> {
        let snapshot = self.engine.snapshot();
        if catalog::get_project(&snapshot, project_id)?.is_none() {
            return Err(AedbError::NotFound {
                resource_type: ResourceType::Project,
                resource_id: project_id.into(),
            });
        }
        Ok(catalog::scopes(&snapshot, project_id)?
            .into_iter()
            .map(|s| s.scope_id)
            .collect())
    }

    pub async fn list_tables(&self, project_id: &str, scope_id: &str) -> Result<Vec<TableSchema>> {
        catalog::tables(&self.engine.snapshot(), project_id, scope_id)
    }

    /// Each table of a scope with its column, index and row counts (rows counted in O(height)).
    pub async fn list_tables_info(
        &self,
        project_id: &str,
        scope_id: &str,
    ) -> Result<Vec<TableInfo>> {
        let snapshot = self.engine.snapshot();
        let mut out = Vec::new();
        for schema in catalog::tables(&snapshot, project_id, scope_id)? {
            let rows = snapshot
                .tree(&aedb_catalog::namespace::table_tree(schema.table_id))?
                .map_or(0, |t| t.len());
            out.push(TableInfo {
                table_name: schema.table_name.clone(),
                column_count: schema.columns.len() as u32,
                index_count: schema.indexes.len() as u32,
                row_count: rows,
            });
        }
        Ok(out)
    }

    /// Each scope of a project with its table and KV key counts.
    pub async fn list_scopes_info(&self, project_id: &str) -> Result<Vec<ScopeInfo>> {
        let snapshot = self.engine.snapshot();
        let mut out = Vec::new();
        for scope in catalog::scopes(&snapshot, project_id)? {
            let tables = catalog::table_count(&snapshot, project_id, &scope.scope_id)? as u32;
            let kv = stored::kv::len(&snapshot, project_id, &scope.scope_id)?;
            out.push(ScopeInfo {
                scope_id: scope.scope_id,
                table_count: tables,
                kv_key_count: kv,
                created_at_micros: scope.created_at_micros,
            });
        }
        Ok(out)
    }

    pub async fn list_indexes(
        &self,
        project_id: &str,
        scope_id: &str,
        table: &str,
    ) -> Result<Vec<aedb_catalog::schema::IndexDef>> {
        Ok(self
            .describe_table(project_id, scope_id, table)
            .await?
            .indexes)
    }

    pub async fn describe_index(
        &self,
        project_id: &str,
        scope_id: &str,
        table: &str,
        index: &str,
    ) -> Result<aedb_catalog::schema::IndexDef> {
        let schema = self.describe_table(project_id, scope_id, table).await?;
        schema
            .index(index)
            .cloned()
            .ok_or_else(|| AedbError::NotFound {
                resource_type: ResourceType::Index,
                resource_id: index.into(),
            })
    }

    pub async fn describe_table(
        &self,
        project_id: &str,
        scope_id: &str,
        table: &str,
    ) -> Result<TableSchema> {
        catalog::load_table(&self.engine.snapshot(), project_id, scope_id, table)
    }

    // ---- reads ----

    /// The snapshot a consistency mode names.
    fn snapshot_for(
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
    fn schema_at(
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
        Ok(ReadTx {
            instance: self,
            snapshot: self.snapshot_for(consistency)?,
        })
    }

    /// Which access path the planner picks for `query`, and why.
    pub async fn explain_query(
        &self,
        project_id: &str,
        scope_id: &str,
        query: Query,
    ) -> std::result::Result<Plan, QueryError> {
        let snapshot = self.engine.snapshot();
        let (schema, _) = self.schema_at(&snapshot, project_id, scope_id, &query.table)?;
        Ok(aedb_query::planner::plan(&schema, query.predicate.as_ref()))
    }

    // ---- KV ----

    pub async fn kv_set(
        &self,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<CommitResult> {
        self.commit(Mutation::KvSet {
            project_id: project_id.into(),
            scope_id: scope_id.into(),
            key,
            value,
        })
        .await
    }

    pub async fn kv_del(
        &self,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
    ) -> Result<CommitResult> {
        self.commit(Mutation::KvDel {
            project_id: project_id.into(),
            scope_id: scope_id.into(),
            key,
        })
        .await
    }

    pub async fn kv_set_default_scope(
        &self,
        project_id: &str,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<CommitResult> {
        self.kv_set(project_id, DEFAULT_SCOPE_ID, key, value).await
    }

    pub async fn counter_add_sharded(
        &self,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 8],
        shard_count: u16,
        shard_hint: u32,
    ) -> Result<CommitResult> {
        self.commit(Mutation::CounterAdd {
            project_id: project_id.into(),
            scope_id: scope_id.into(),
            key,
            amount_be,
            shard_count,
            shard_hint,
        })
        .await
    }

    pub async fn kv_inc_u256(
        &self,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 32],
    ) -> Result<CommitResult> {
        let (project_id, scope_id) = (project_id.into(), scope_id.into());
        self.commit(Mutation::KvIncU256 {
            project_id,
            scope_id,
            key,
            amount_be,
        })
        .await
    }

    /// Fails with `Underflow` when the amount exceeds the value (a missing key is 0).
    pub async fn kv_dec_u256(
        &self,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 32],
    ) -> Result<CommitResult> {
        let (project_id, scope_id) = (project_id.into(), scope_id.into());
        self.commit(Mutation::KvDecU256 {
            project_id,
            scope_id,
            key,
            amount_be,
        })
        .await
    }

    pub async fn kv_add_u64_ex(
        &self,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 8],
        on_missing: KvU64MissingPolicy,
        on_overflow: KvU64OverflowPolicy,
    ) -> Result<CommitResult> {
        let (project_id, scope_id) = (project_id.into(), scope_id.into());
        self.commit(Mutation::KvAddU64Ex {
            project_id,
            scope_id,
            key,
            amount_be,
            on_missing,
            on_overflow,
        })
        .await
    }

    pub async fn kv_sub_u64_ex(
        &self,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 8],
        on_missing: KvU64MissingPolicy,
        on_underflow: KvU64UnderflowPolicy,
    ) -> Result<CommitResult> {
        let (project_id, scope_id) = (project_id.into(), scope_id.into());
        self.commit(Mutation::KvSubU64Ex {
            project_id,
            scope_id,
            key,
            amount_be,
            on_missing,
            on_underflow,
        })
        .await
    }

    /// Set, add or subtract; with `expected_seq`, only if the key's version still equals it.
    pub async fn kv_mutate_u64(
        &self,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        op: KvU64MutatorOp,
        operand_be: [u8; 8],
        expected_seq: Option<u64>,
    ) -> Result<CommitResult> {
        let (project_id, scope_id) = (project_id.into(), scope_id.into());
        self.commit(Mutation::KvMutateU64 {
            project_id,
            scope_id,
            key,
            op,
            operand_be,
            expected_seq,
        })
        .await
    }

    pub async fn kv_mutate_u256(
        &self,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        op: KvU256MutatorOp,
        operand_be: [u8; 32],
        expected_seq: Option<u64>,
    ) -> Result<CommitResult> {
        let (project_id, scope_id) = (project_id.into(), scope_id.into());
        self.commit(Mutation::KvMutateU256 {
            project_id,
            scope_id,
            key,
            op,
            operand_be,
            expected_seq,
        })
        .await
    }

    /// Set `key` to `value` only if its version (0: missing) is `expected_seq`; otherwise
    /// `AssertionFailed` and nothing is written.
    pub async fn kv_compare_and_swap(
        &self,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        value: Vec<u8>,
        expected_seq: u64,
    ) -> Result<CommitResult> {
        let envelope = TransactionEnvelope {
            assertions: vec![crate::commit::ReadAssertion::KeyVersion {
                project_id: project_id.into(),
                scope_id: scope_id.into(),
                key: key.clone(),
                expected_seq,
            }],
            write_intent: WriteIntent {
                mutations: vec![Mutation::KvSet {
                    project_id: project_id.into(),
                    scope_id: scope_id.into(),
                    key,
                    value,
                }],
            },
            ..TransactionEnvelope::default()
        };
        self.commit_envelope(envelope).await
    }

    /// Sum of the shards of a sharded counter (read with the shard count it was written with).
    pub async fn counter_read_sharded(
        &self,
        project_id: &str,
        scope_id: &str,
        key: &[u8],
        shard_count: u16,
        consistency: ConsistencyMode,
    ) -> std::result::Result<u64, QueryError> {
        let snapshot = self.snapshot_for(consistency)?;
        Ok(stored::counters::sum(
            &snapshot,
            project_id,
            scope_id,
            key,
            shard_count,
        )?)
    }

    /// Read one key. Outside secure mode any caller may read.
    pub async fn kv_get(
        &self,
        project_id: &str,
        scope_id: &str,
        key: &[u8],
        consistency: ConsistencyMode,
        _caller: &CallerContext,
    ) -> std::result::Result<Option<KvEntry>, QueryError> {
        self.kv_get_no_auth(project_id, scope_id, key, consistency)
            .await
    }

    pub async fn kv_get_no_auth(
        &self,
        project_id: &str,
        scope_id: &str,
        key: &[u8],
        consistency: ConsistencyMode,
    ) -> std::result::Result<Option<KvEntry>, QueryError> {
        let snapshot = self.snapshot_for(consistency)?;
        Ok(stored::kv::get(&snapshot, project_id, scope_id, key)?)
    }

    /// Keys starting with `prefix`, in order, a page of at most `limit` (and `max_scan_rows`).
    #[allow(clippy::too_many_arguments)]
    pub async fn kv_scan_prefix(
        &self,
        project_id: &str,
        scope_id: &str,
        prefix: &[u8],
        limit: u64,
        cursor: Option<String>,
        consistency: ConsistencyMode,
        _caller: &CallerContext,
    ) -> std::result::Result<KvScanResult, QueryError> {
        self.kv_scan_of_prefix(project_id, scope_id, prefix, limit, cursor, consistency)
    }

    fn kv_scan_of_prefix(
        &self,
        project_id: &str,
        scope_id: &str,
        prefix: &[u8],
        limit: u64,
        cursor: Option<String>,
        consistency: ConsistencyMode,
    ) -> std::result::Result<KvScanResult, QueryError> {
        let upper = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
        self.kv_scan(
            project_id,
            scope_id,
            Bound::Included(prefix.to_vec()),
            upper,
            limit,
            cursor,
            consistency,
        )
    }

    /// Keys within the bounds, in order, a page at a time.
    #[allow(clippy::too_many_arguments)]
    pub async fn kv_scan_range(
        &self,
        project_id: &str,
        scope_id: &str,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        limit: u64,
        cursor: Option<String>,
        consistency: ConsistencyMode,
        _caller: &CallerContext,
    ) -> std::result::Result<KvScanResult, QueryError> {
        self.kv_scan(project_id, scope_id, start, end, limit, cursor, consistency)
    }

    pub async fn kv_scan_prefix_no_auth(
        &self,
        project_id: &str,
        scope_id: &str,
        prefix: &[u8],
        limit: u64,
        consistency: ConsistencyMode,
    ) -> std::result::Result<Vec<(Vec<u8>, KvEntry)>, QueryError> {
        Ok(self
            .kv_scan_of_prefix(project_id, scope_id, prefix, limit, None, consistency)?
            .entries)
    }

    #[allow(clippy::too_many_arguments)]
    fn kv_scan(
        &self,
        project_id: &str,
        scope_id: &str,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        limit: u64,
        cursor: Option<String>,
        consistency: ConsistencyMode,
    ) -> std::result::Result<KvScanResult, QueryError> {
        let cursor = cursor
            .as_deref()
            .map(|c| self.cursors.decode(c))
            .transpose()?;
        let consistency = cursor
            .as_ref()
            .map_or(consistency, |c| ConsistencyMode::AtSeq(c.snapshot_seq));
        let snapshot = self.snapshot_for(consistency)?;
        let page_size = cursor
            .as_ref()
            .map(|c| c.page_size as u64)
            .unwrap_or(limit)
            .clamp(1, self.config.max_scan_rows) as usize;
        let start = match &cursor {
            Some(c) => Bound::Excluded(c.last_key.clone()),
            None => start,
        };
        let stored::kv::KvPage { entries, more } =
            stored::kv::scan(&snapshot, project_id, scope_id, start, end, page_size)?;
        let next = match (more, entries.last()) {
            (true, Some((key, _))) => Some(self.cursors.encode(&PageCursor {
                snapshot_seq: snapshot.seq(),
                page_size: page_size as u32,
                last_key: key.clone(),
            })),
            _ => None,
        };
        Ok(KvScanResult {
            entries,
            truncated: next.is_some(),
            cursor: next,
            snapshot_seq: snapshot.seq(),
        })
    }

    // ---- operations ----

    /// Checkpoint now; commits and queries go on meanwhile.
    pub async fn checkpoint_now(&self) -> Result<CheckpointInfo> {
        self.engine.checkpoint_now()
    }

    /// Make everything durable, checkpoint, release the directory lock.
    pub async fn shutdown(self) -> Result<()> {
        match Arc::try_unwrap(self.engine) {
            Ok(engine) => engine.shutdown(),
            Err(_) => Err(AedbError::Validation(
                "the instance is still in use elsewhere".into(),
            )),
        }
    }
}

/// The encoded primary key of a tuple (for callers building keys, e.g. tests and tools).
pub fn encode_primary_key(values: &[aedb_catalog::types::Value]) -> Vec<u8> {
    encode_key(values)
}

/// A pinned snapshot: every read through it sees the same version, however many commits
/// happen meanwhile.
pub struct ReadTx<'a> {
    instance: &'a AedbInstance,
    snapshot: Snapshot,
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
        Ok(stored::kv::get(&self.snapshot, project_id, scope_id, key)?)
    }
}
