//! Issue #11 item 8: code written for the original aedb 0.1.9 must keep compiling.
//!
//! Every `use` below is a public path the original exposes and its users import, taken from
//! `/work/shared/spec/seed-README.md` (the README) and `/work/shared/spec/aedb-0.1.9-behaviour.md`
//! (the spec, cited by section). Where the spec names a type but not its module, the module is
//! the one the type has in the original crate's source (the spec's own source of truth).
//! One item per line, so a missing path names itself.
//!
//! Lines marked `// MISSING:` do not resolve yet; each names the re-export or variant needed.
//! Uncomment them as they land.
//!
//! Not here on purpose (they belong to later issues, and their owners add them): accumulators,
//! events and reactive processors, `aedb::engine_interface`, `Permission` and the rest of the
//! security model beyond `CallerContext`, backup/restore, migrations and `aedb::declarative`,
//! `aedb::repository`, the order book, metrics and hooks.

#![allow(unused_imports, dead_code)]

/// README "Quick Start": its imports, verbatim.
mod readme_quick_start {
    use aedb::catalog::schema::ColumnDef;
    use aedb::catalog::types::{ColumnType, Row, Value};
    use aedb::catalog::DdlOperation;
    use aedb::commit::validation::Mutation;
    use aedb::query::plan::{Expr, Query};
    use aedb::AedbInstance;
}

/// README "Consistency modes": its import, verbatim.
mod readme_consistency_modes {
    use aedb::query::plan::{ConsistencyMode, Query, QueryOptions};
}

/// README "Preflight and commits" (low-latency profile): its import and qualified paths.
mod readme_low_latency {
    use aedb::config::AedbConfig;
    use aedb::AedbInstance as _;

    fn open(dir: &std::path::Path) {
        let config = AedbConfig::low_latency([7u8; 32]);
        let _ = aedb::AedbInstance::open(config, dir);
    }
}

/// README "API Areas" and the list: the modules themselves.
mod modules {
    use aedb::catalog;
    use aedb::catalog::schema;
    use aedb::catalog::types;
    use aedb::commit;
    use aedb::commit::action; // module missing: `pub mod action` in crate::commit (see mod action below)
    use aedb::commit::executor;
    use aedb::commit::tx; // module missing: `pub mod tx` in crate::commit (see mod tx below)
    use aedb::commit::validation;
    use aedb::config;
    use aedb::error;
    use aedb::permission;
    use aedb::preflight; // module missing: `pub mod preflight` at the crate root (see mod preflight below)
    use aedb::query;
    use aedb::query::error as query_error;
    use aedb::query::executor as query_executor; // module missing: `aedb::query::executor` (see mod query below)
    use aedb::query::plan;
    use aedb::query::planner;
    // README "API Areas": `aedb::checkpoint`, `aedb::recovery` ("durability and restore path").
    // MISSING: use aedb::checkpoint; // module missing: `pub mod checkpoint` at the crate root (README "API Areas")
    // MISSING: use aedb::recovery; // module missing: `pub mod recovery` at the crate root (README "API Areas")
}

/// Spec §1 (namespaces, schema, DDL), §1.3 value model, §1.5–1.7 DDL, alterations, indexes.
mod catalog {
    // §1.1
    use aedb::catalog::DEFAULT_SCOPE_ID; // re-export `aedb_catalog::namespace::DEFAULT_SCOPE_ID` in `aedb::catalog`
                                         // §1.2, §1.5
    use aedb::catalog::DdlOperation;
    // MISSING: use aedb::DdlBatchOrderMode; // type missing (no commit_ddl_batch_with_mode): enum {AsProvided, DependencyAware} at the root
    // MISSING: use aedb::DdlBatchResult; // type missing (no commit_ddl_batch): struct {seq, results: Vec<DdlResult>} at the root
    use aedb::DdlResult; // re-export `aedb::catalog::DdlResult` (aedb_catalog::ddl) at the crate root
    use aedb::ProjectInfo;
    use aedb::ScopeInfo; // re-export `api::namespaces::ScopeInfo` at the crate root
    use aedb::TableInfo; // re-export `api::namespaces::TableInfo` at the crate root
                         // §1.3
    use aedb::catalog::schema::ColumnDef;
    use aedb::catalog::schema::TableSchema;
    use aedb::catalog::types::ColumnType;
    use aedb::catalog::types::Row;
    use aedb::catalog::types::Value;
    // §1.6
    use aedb::catalog::schema::Constraint;
    // MISSING: use aedb::catalog::schema::ForeignKey; // type missing (foreign keys): struct {name, columns, references_project_id, references_scope_id, references_table, references_columns, on_delete, on_update}
    // MISSING: use aedb::catalog::schema::ForeignKeyAction; // type missing (foreign keys): enum {Restrict, Cascade, SetNull, SetDefault, NoAction}
    use aedb::catalog::schema::TableAlteration; // re-export `aedb_catalog::ddl::TableAlteration` in `aedb::catalog::schema`
                                                // §1.7
    use aedb::catalog::schema::IndexDef;
    use aedb::catalog::schema::IndexType;
}

/// Spec §2: the `Mutation` enum and its argument types, "module `aedb::commit::validation`".
mod validation {
    use aedb::commit::validation::CompareOp; // re-export `crate::commit::envelope::CompareOp` in `aedb::commit::validation`
    use aedb::commit::validation::ConflictAction;
    use aedb::commit::validation::ConflictTarget;
    use aedb::commit::validation::KvIntegerAmount;
    use aedb::commit::validation::KvIntegerMissingPolicy;
    use aedb::commit::validation::KvIntegerUnderflowPolicy;
    use aedb::commit::validation::KvU256MissingPolicy;
    use aedb::commit::validation::KvU256MutatorOp;
    use aedb::commit::validation::KvU256OverflowPolicy;
    use aedb::commit::validation::KvU256UnderflowPolicy;
    use aedb::commit::validation::KvU64MissingPolicy;
    use aedb::commit::validation::KvU64MutatorOp;
    use aedb::commit::validation::KvU64OverflowPolicy;
    use aedb::commit::validation::KvU64UnderflowPolicy;
    use aedb::commit::validation::Mutation;
    use aedb::commit::validation::TableUpdateExpr;
    use aedb::commit::validation::UpdateExpr;
    use aedb::commit::validation::MAX_COUNTER_SHARDS;
}

/// Spec §3.1–3.2: commit entry points and results; "`CommitResult` and `IdempotencyOutcome`
/// live in `aedb::commit::executor`; `CommitFinality` is at the crate root".
mod executor {
    use aedb::commit::executor::CommitResult;
    use aedb::commit::executor::IdempotencyOutcome;
    use aedb::CommitFinality;
    // MISSING: use aedb::MutateWhereReturningResult; // type missing (no mutate_where_returning): struct {commit, primary_key, before, after} at the root
    // §11 `head_state() -> HeadState`
    // MISSING: use aedb::commit::executor::HeadState; // type missing (no head_state()): struct {visible_head_seq, durable_head_seq} in commit::executor
}

/// Spec §3.4 (envelopes, read sets, assertions, idempotency) and §3.6 (`PreflightPlan`).
mod tx {
    use aedb::commit::tx::AssertionActual; // module commit::tx: re-export crate::commit::envelope::AssertionActual
    use aedb::commit::tx::IdempotencyKey; // module commit::tx: re-export crate::commit::envelope::IdempotencyKey
    use aedb::commit::tx::PreflightPlan; // module commit::tx: re-export crate::PreflightPlan (api::write::PreflightPlan)
    use aedb::commit::tx::ReadAssertion; // module commit::tx: re-export crate::commit::envelope::ReadAssertion
    use aedb::commit::tx::ReadBound; // module commit::tx: re-export crate::commit::read_set::ReadBound
    use aedb::commit::tx::ReadKey; // module commit::tx: re-export crate::commit::read_set::ReadKey
    use aedb::commit::tx::ReadRange; // module commit::tx: re-export crate::commit::read_set::ReadRange
    use aedb::commit::tx::ReadRangeEntry; // module commit::tx: re-export crate::commit::read_set::ReadRangeEntry
    use aedb::commit::tx::ReadSet; // module commit::tx: re-export crate::commit::read_set::ReadSet
    use aedb::commit::tx::ReadSetEntry; // module commit::tx: re-export crate::commit::read_set::ReadSetEntry
    use aedb::commit::tx::TransactionEnvelope; // module commit::tx: re-export crate::commit::envelope::TransactionEnvelope
    use aedb::commit::tx::WriteClass; // module commit::tx: re-export crate::commit::envelope::WriteClass
    use aedb::commit::tx::WriteIntent; // module commit::tx: re-export crate::commit::envelope::WriteIntent
}

/// Spec §3.5: action envelopes, "`aedb::commit::action`".
mod action {
    use aedb::commit::action::ActionCommitOutcome; // module commit::action: re-export crate::commit::envelope::ActionCommitOutcome
    use aedb::commit::action::ActionCommitResult; // module commit::action: re-export crate::commit::envelope::ActionCommitResult
    use aedb::commit::action::ActionEnvelopeRequest; // module commit::action: re-export crate::commit::envelope::ActionEnvelopeRequest
}

/// Spec §3.6: preflight.
mod preflight {
    use aedb::preflight::PreflightResult; // module preflight: re-export crate::PreflightResult (api::write::PreflightResult)
}

/// Spec §4: queries, "`aedb::query::plan`, `aedb::query::executor`"; §4.9 `QueryError`.
mod query {
    // §4.1, §4.2
    use aedb::query::plan::col;
    use aedb::query::plan::lit;
    use aedb::query::plan::Aggregate;
    use aedb::query::plan::Expr;
    use aedb::query::plan::JoinSpec;
    use aedb::query::plan::JoinType;
    use aedb::query::plan::Order;
    use aedb::query::plan::Query;
    // §4.3
    // MISSING: use aedb::ListPageResult; // type missing (no list_with_total): struct {rows, total_count, next_cursor, snapshot_seq, rows_examined} at the root
    // MISSING: use aedb::QueryBatchItem; // type missing (no query_batch): struct {query, options} at the root
    // MISSING: use aedb::QueryDiagnostics; // type missing: explain_query returns aedb::query::planner::Plan, the spec says QueryDiagnostics (root)
    use aedb::ReadTx;
    // §4.4, §4.5
    use aedb::query::plan::ConsistencyMode;
    use aedb::query::plan::QueryOptions;
    // §4.6
    use aedb::query::executor::QueryResult; // module query::executor: re-export aedb_query::plan::QueryResult
                                            // §4.9
    use aedb::query::error::QueryError;
}

/// Spec §5: KV API result types.
mod kv {
    // MISSING: use aedb::query::KvCursor; // type missing: struct {snapshot_seq, last_key: Vec<u8>, page_size: u64}; KvScanResult.cursor is Option<String> here, Option<KvCursor> in the spec
    use aedb::query::KvScanResult; // re-export crate::KvScanResult (api::kv::KvScanResult) in `aedb::query`
                                   // MISSING: use aedb::query::ScopedKvEntry; // type missing (no kv_scan_all_scopes): struct {scope_id, key, value, version} in aedb::query
    use aedb::storage::keyspace::KvEntry; // `aedb::storage` is the pager crate: needs `pub mod keyspace { pub use crate::stored::kv::KvEntry; }` inside it
}

/// Spec §9.1: callers (permissions themselves are a later issue).
mod permission {
    use aedb::permission::CallerContext;
}

/// Spec §10: configuration, "`aedb::config`"; README "Preflight and commits".
mod config {
    use aedb::config::AedbConfig;
    use aedb::config::DurabilityMode;
    // MISSING: use aedb::config::PrimaryIndexBackend; // type missing: enum {OrdMap (default), ArtExperimental} in aedb::config
    use aedb::config::RecoveryMode;
}

/// Spec §6–8: accumulators, events, reactive processors and `aedb::engine_interface`.
mod accumulators_events_processors {
    use aedb::catalog::schema::AccumulatorValueType;
    use aedb::engine_interface::{
        BatchRejected, EffectBatch, EffectBatchCommitResult, EffectEvent, EffectOperation,
        EffectPrecondition, KeyedStateQueryRequest, ProcessorContext, ProcessorPullResult,
    };
    use aedb::{AccumulatorExposureMetrics, AccumulatorLag};
    use aedb::{EventOutboxRecord, EventStreamPage};
    use aedb::{
        ReactiveProcessorHealth, ReactiveProcessorInfo, ReactiveProcessorLag,
        ReactiveProcessorOptions, ReactiveProcessorRuntimeStatus, ReactiveProcessorSloStatus,
    };
}

/// Spec §14: `AedbError` and its `ResourceType` ("error module").
mod errors {
    use aedb::error::AedbError;
    use aedb::error::ResourceType;
}

use aedb::commit::tx::AssertionActual;
use aedb::error::{AedbError, ResourceType};
use aedb::query::error::QueryError;

/// Spec §14: every `AedbError` variant, in the shape the spec gives (fields by name, so a
/// renamed or added field fails too; a tuple or unit variant as the spec writes it, and as in
/// the original where the spec gives no shape: `Io`, `Encode`, `Decode`, `Validation` are
/// tuple variants there).
#[allow(unreachable_patterns)]
fn aedb_error_variant(e: &AedbError) -> &'static str {
    match e {
        AedbError::Io(..) => "Io",
        AedbError::Encode(..) => "Encode", // variant missing (original: Encode(String))
        AedbError::Decode(..) => "Decode", // variant missing (original: Decode(String))
        AedbError::Validation(..) => "Validation",
        AedbError::InvalidConfig { message: _ } => "InvalidConfig",
        AedbError::IntegrityError { message: _ } => "IntegrityError", // variant missing (spec: IntegrityError{message})
        AedbError::Unavailable { message: _ } => "Unavailable", // variant missing (spec: Unavailable{message})
        AedbError::CheckpointInProgress => "CheckpointInProgress", // variant missing (spec: unit)
        AedbError::AlreadyExists {
            resource_type: _,
            resource_id: _,
        } => "AlreadyExists",
        AedbError::NotFound {
            resource_type: _,
            resource_id: _,
        } => "NotFound",
        AedbError::DuplicatePK { table: _, key: _ } => "DuplicatePK",
        AedbError::UniqueViolation {
            table: _,
            index: _,
            key: _,
        } => "UniqueViolation",
        // variant missing (spec: ForeignKeyViolation{fk_name, table, ref_table, ref_key}):
        AedbError::ForeignKeyViolation {
            fk_name: _,
            table: _,
            ref_table: _,
            ref_key: _,
        } => "ForeignKeyViolation",
        AedbError::CheckConstraintFailed {
            table: _,
            constraint: _,
        } => "CheckConstraintFailed",
        AedbError::NotNullViolation {
            table: _,
            column: _,
        } => "NotNullViolation",
        AedbError::TypeMismatch {
            table: _,
            column: _,
            expected: _,
            actual: _,
        } => "TypeMismatch",
        AedbError::UnknownColumn {
            table: _,
            column: _,
        } => "UnknownColumn",
        AedbError::Conflict(message) => {
            let _: &String = message;
            "Conflict"
        }
        AedbError::Underflow => "Underflow",
        AedbError::Overflow => "Overflow",
        AedbError::QueueFull => "QueueFull", // shape differs: spec unit `QueueFull`, here `QueueFull { capacity }`
        AedbError::PermissionDenied(message) => {
            let _: &String = message;
            "PermissionDenied"
        } // variant missing (spec: PermissionDenied(String))
        AedbError::Timeout => "Timeout",     // variant missing (spec: unit)
        AedbError::PartitionLockTimeout => "PartitionLockTimeout", // variant missing (spec: unit)
        AedbError::EpochApplyTimeout => "EpochApplyTimeout", // variant missing (spec: unit)
        AedbError::ParallelApplyCancelled => "ParallelApplyCancelled", // variant missing (spec: unit)
        AedbError::ParallelApplyWorkerPanicked => "ParallelApplyWorkerPanicked", // variant missing (spec: unit)
        AedbError::SnapshotExpired => "SnapshotExpired", // variant missing (spec: unit)
        AedbError::AssertionFailed {
            index,
            assertion: _,
            actual: _,
        } => {
            let _: &usize = index;
            "AssertionFailed"
        }
        _ => "other",
    }
}

/// Spec §3.4 / §2 item 20: `AssertionFailed{index, assertion, actual: AssertionActual{..}}`, e.g.
/// `AssertionFailed{index:0, assertion: KeyVersion, actual: Version(v)}`: the fields are typed
/// as the original boxes them: `Box<ReadAssertion>`, `Box<AssertionActual>`.
#[allow(unreachable_patterns, clippy::single_match)]
fn assertion_failed_fields(e: &AedbError) {
    match e {
        AedbError::AssertionFailed {
            index: _,
            assertion,
            actual,
        } => {
            let _: &aedb::commit::tx::ReadAssertion = assertion;
            let _: &AssertionActual = actual;
            let _ = [
                AssertionActual::Missing,
                AssertionActual::Bool(true),
                AssertionActual::Version(1),
                AssertionActual::Bytes(vec![]),
                AssertionActual::Value(aedb::catalog::types::Value::Null),
                AssertionActual::Count(0),
            ];
        }
        _ => {}
    }
}

/// Spec §14: `ResourceType{Project, Scope, Table, Index}` of the error module.
#[allow(unreachable_patterns)]
fn resource_type_variant(r: ResourceType) -> &'static str {
    match r {
        ResourceType::Project => "Project",
        ResourceType::Scope => "Scope",
        ResourceType::Table => "Table",
        ResourceType::Index => "Index",
        _ => "other",
    }
}

/// Spec §4.9: every `QueryError` variant, with its fields as the spec names them.
#[allow(unreachable_patterns)]
fn query_error_variant(e: &QueryError) -> &'static str {
    match e {
        QueryError::TableNotFound {
            project_id: _,
            table: _,
        } => "TableNotFound",
        QueryError::ColumnNotFound {
            table: _,
            column: _,
        } => "ColumnNotFound",
        QueryError::TypeMismatch {
            column: _,
            expected: _,
            got: _,
        } => "TypeMismatch",
        QueryError::ScanBoundExceeded {
            estimated_rows: _,
            max_scan_rows: _,
        } => "ScanBoundExceeded",
        QueryError::InvalidQuery { reason: _ } => "InvalidQuery",
        // shape differs: spec `PermissionDenied{permission, scope}`, here `PermissionDenied(String)`:
        QueryError::PermissionDenied {
            permission: _,
            scope: _,
        } => "PermissionDenied",
        QueryError::SeqNotYetVisible {
            requested: _,
            current: _,
        } => "SeqNotYetVisible",
        QueryError::SeqGarbageCollected {
            requested: _,
            oldest_available: _,
        } => "SeqGarbageCollected",
        QueryError::CursorExpired { original_seq: _ } => "CursorExpired", // variant missing (spec: CursorExpired{original_seq})
        QueryError::SnapshotExpired => "SnapshotExpired", // variant missing (spec: unit)
        QueryError::SnapshotLimitReached => "SnapshotLimitReached", // variant missing (spec: unit)
        QueryError::InternalError(message) => {
            let _: &String = message;
            "InternalError"
        }
        _ => "other",
    }
}

/// Spec §4.9: "implements `std::error::Error`; `From<AedbError>`"; §14: `AedbError` is a
/// thiserror error with `code_str()`.
fn error_traits() {
    fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
    fn from_aedb<E: From<AedbError>>() {}
    is_error::<AedbError>();
    is_error::<QueryError>();
    from_aedb::<QueryError>();
    let _: fn(&AedbError) -> &'static str = AedbError::code_str;
}

/// Small enums the spec spells out variant by variant (§3.2–3.6, §4.5, §10), at the spec's paths.
#[allow(unreachable_patterns)]
mod enum_shapes {
    use aedb::commit::action::ActionCommitOutcome; // module commit::action (see above)
    use aedb::commit::executor::IdempotencyOutcome;
    use aedb::commit::tx::WriteClass; // module commit::tx (see above)
    use aedb::commit::validation::CompareOp; // re-export in commit::validation (see above)
    use aedb::config::{DurabilityMode, RecoveryMode};
    use aedb::preflight::PreflightResult; // module preflight (see above)
    use aedb::query::plan::ConsistencyMode;
    use aedb::CommitFinality;

    pub fn compare_op(a: CompareOp) {
        match a {
            CompareOp::Eq
            | CompareOp::Ne
            | CompareOp::Gt
            | CompareOp::Gte
            | CompareOp::Lt
            | CompareOp::Lte => {}
            _ => {}
        }
    }
    pub fn write_class(b: WriteClass) {
        match b {
            WriteClass::Economic | WriteClass::Standard => {}
            _ => {}
        }
    }
    pub fn action_outcome(d: ActionCommitOutcome) {
        match d {
            ActionCommitOutcome::Applied | ActionCommitOutcome::Duplicate => {}
            _ => {}
        }
    }
    pub fn preflight_result(e: PreflightResult) {
        match e {
            PreflightResult::Ok { affected_rows: _ } | PreflightResult::Err { reason: _ } => {}
            _ => {}
        }
    }

    pub fn idempotency_outcome(c: IdempotencyOutcome) {
        match c {
            IdempotencyOutcome::Applied | IdempotencyOutcome::Duplicate => {}
            _ => {}
        }
    }

    pub fn consistency_mode(f: ConsistencyMode) {
        match f {
            ConsistencyMode::AtLatest
            | ConsistencyMode::AtSeq(_)
            | ConsistencyMode::AtCheckpoint => {}
            _ => {}
        }
    }

    pub fn commit_finality(g: CommitFinality) {
        match g {
            CommitFinality::Visible | CommitFinality::Durable => {}
            _ => {}
        }
    }

    pub fn durability_mode(h: DurabilityMode) {
        match h {
            DurabilityMode::Full | DurabilityMode::Batch | DurabilityMode::OsBuffered => {}
            _ => {}
        }
    }

    pub fn recovery_mode(i: RecoveryMode) {
        match i {
            RecoveryMode::Strict | RecoveryMode::Permissive => {}
            _ => {}
        }
    }
}

#[test]
fn public_paths_resolve_and_error_variants_match() {
    use aedb::commit::validation::Mutation;
    use aedb::query::plan::ConsistencyMode;

    error_traits();

    let e = AedbError::Validation("project_id _system is reserved".into());
    assert_eq!(aedb_error_variant(&e), "Validation");
    assert_eq!(e.code_str(), "validation");
    assertion_failed_checks(&e);
    let e = AedbError::NotFound {
        resource_type: ResourceType::Project,
        resource_id: "x".into(),
    };
    assert_eq!(aedb_error_variant(&e), "NotFound");
    assert_eq!(e.code_str(), "project_not_found");
    assert_eq!(aedb_error_variant(&AedbError::Underflow), "Underflow");
    assert_eq!(aedb_error_variant(&AedbError::Timeout), "Timeout"); // AedbError::Timeout (unit)
    assert_eq!(
        aedb_error_variant(&AedbError::PermissionDenied(
            "caller_id 'system' is reserved for internal use".into()
        )),
        "PermissionDenied"
    ); // AedbError::PermissionDenied(String)
    assert_eq!(resource_type_variant(ResourceType::Index), "Index");

    let q = QueryError::InvalidQuery {
        reason: "full scan requires limit/cursor or allow_full_scan".into(),
    };
    assert_eq!(query_error_variant(&q), "InvalidQuery");
    // §4.9: `From<AedbError>` maps Validation → InvalidQuery.
    let q: QueryError = AedbError::Validation("bad".into()).into();
    assert_eq!(query_error_variant(&q), "InvalidQuery");
    assert_eq!(
        query_error_variant(&QueryError::SnapshotLimitReached),
        "SnapshotLimitReached"
    ); // QueryError::SnapshotLimitReached (unit)

    let m = Mutation::KvSet {
        project_id: "demo".into(),
        scope_id: "app".into(),
        key: b"k".to_vec(),
        value: b"v".to_vec(),
    };
    assert!(matches!(m, Mutation::KvSet { .. }));
    enum_shapes::consistency_mode(ConsistencyMode::default());
    assert_eq!(ConsistencyMode::default(), ConsistencyMode::AtLatest);
    assert_eq!(
        aedb::CommitFinality::default(),
        aedb::CommitFinality::Visible
    );
    assert_eq!(aedb::commit::tx::IdempotencyKey([7; 16]).0, [7; 16]); // module commit::tx
    assert_eq!(
        aedb::commit::tx::WriteClass::default(),
        aedb::commit::tx::WriteClass::Standard
    ); // module commit::tx
    assert!(matches!(
        aedb::preflight::PreflightResult::Ok { affected_rows: 1 },
        aedb::preflight::PreflightResult::Ok { .. }
    )); // module preflight
}

fn assertion_failed_checks(e: &AedbError) {
    assertion_failed_fields(e);
}
