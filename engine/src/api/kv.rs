//! KV and counters: the KV mutations as calls, and reads and scans of KV entries.

use std::ops::Bound;

use aedb_catalog::namespace::DEFAULT_SCOPE_ID;
use aedb_pager::store::prefix_end;
use aedb_query::plan::ConsistencyMode;
use aedb_query::QueryError;

use crate::commit::kv::KvEntry;
use crate::commit::validation::{
    KvU256MutatorOp, KvU64MissingPolicy, KvU64MutatorOp, KvU64OverflowPolicy, KvU64UnderflowPolicy,
};
use crate::commit::{CommitResult, Mutation, TransactionEnvelope, WriteIntent};
use crate::cursor::PageCursor;
use crate::error::Result;
use crate::permission::CallerContext;
use crate::stored;

use super::AedbInstance;

/// A page of a KV scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvScanResult {
    pub entries: Vec<(Vec<u8>, KvEntry)>,
    /// Pass back to continue after the last entry (None on the last page).
    pub cursor: Option<String>,
    pub snapshot_seq: u64,
    pub truncated: bool,
}

fn kv_set(project_id: &str, scope_id: &str, key: Vec<u8>, value: Vec<u8>) -> Mutation {
    Mutation::KvSet {
        project_id: project_id.into(),
        scope_id: scope_id.into(),
        key,
        value,
    }
}

fn kv_del(project_id: &str, scope_id: &str, key: Vec<u8>) -> Mutation {
    Mutation::KvDel {
        project_id: project_id.into(),
        scope_id: scope_id.into(),
        key,
    }
}

impl AedbInstance {
    // ---- KV ----

    pub async fn kv_set(
        &self,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<CommitResult> {
        self.commit(kv_set(project_id, scope_id, key, value)).await
    }

    /// [`Self::kv_set`] as `caller`, who needs `KvWrite` covering the key.
    pub async fn kv_set_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        value: Vec<u8>,
    ) -> Result<CommitResult> {
        self.commit_as(caller, kv_set(project_id, scope_id, key, value))
            .await
    }

    pub async fn kv_del(
        &self,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
    ) -> Result<CommitResult> {
        self.commit(kv_del(project_id, scope_id, key)).await
    }

    /// [`Self::kv_del`] as `caller`, who needs `KvWrite` covering the key.
    pub async fn kv_del_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
    ) -> Result<CommitResult> {
        self.commit_as(caller, kv_del(project_id, scope_id, key))
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
}
