//! KV reads: point reads and scans, with a caller (checked against its `KvRead` grants: a
//! scan skips the keys the caller may not read) or without (`_no_auth`, refused when the
//! instance demands callers), and the sums of sharded counters.

use std::ops::Bound;

use aedb_catalog::permission::KvReach;
use aedb_pager::store::prefix_end;
use aedb_query::plan::ConsistencyMode;
use aedb_query::QueryError;

use crate::commit::kv::KvEntry;
use crate::cursor::PageCursor;
use crate::permission::CallerContext;
use crate::stored;

use super::AedbInstance;

/// A page of a KV scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvScanResult {
    pub entries: Vec<(Vec<u8>, KvEntry)>,
    /// Pass back to continue after the last key looked at (None on the last page).
    pub cursor: Option<String>,
    pub snapshot_seq: u64,
    pub truncated: bool,
}

type QResult<T> = std::result::Result<T, QueryError>;

impl AedbInstance {
    /// Sum of the shards of a sharded counter (read with the shard count it was written with).
    pub async fn counter_read_sharded(
        &self,
        project_id: &str,
        scope_id: &str,
        key: &[u8],
        shard_count: u16,
        consistency: ConsistencyMode,
    ) -> QResult<u64> {
        self.anonymous("counter_read_sharded")?;
        self.counter_sum(project_id, scope_id, key, shard_count, consistency)
    }

    /// [`Self::counter_read_sharded`] as `caller`, who needs `KvRead` of the counter's key.
    pub async fn counter_read_sharded_as(
        &self,
        caller: &CallerContext,
        project_id: &str,
        scope_id: &str,
        key: &[u8],
        shard_count: u16,
        consistency: ConsistencyMode,
    ) -> QResult<u64> {
        self.check_kv_read(caller, project_id, scope_id, key)?;
        self.counter_sum(project_id, scope_id, key, shard_count, consistency)
    }

    fn counter_sum(
        &self,
        project_id: &str,
        scope_id: &str,
        key: &[u8],
        shard_count: u16,
        consistency: ConsistencyMode,
    ) -> QResult<u64> {
        let snapshot = self.snapshot_for(consistency)?;
        Ok(stored::counters::sum(
            &snapshot,
            project_id,
            scope_id,
            key,
            shard_count,
        )?)
    }

    /// Read one key as `caller`, who needs a `KvRead` grant covering it — always, as in the
    /// original, also on an instance opened with `open` (anonymous reads: `kv_get_no_auth`).
    pub async fn kv_get(
        &self,
        project_id: &str,
        scope_id: &str,
        key: &[u8],
        consistency: ConsistencyMode,
        caller: &CallerContext,
    ) -> QResult<Option<KvEntry>> {
        self.check_kv_read(caller, project_id, scope_id, key)?;
        self.kv_read(project_id, scope_id, key, consistency)
    }

    /// Read one key without a caller.
    pub async fn kv_get_no_auth(
        &self,
        project_id: &str,
        scope_id: &str,
        key: &[u8],
        consistency: ConsistencyMode,
    ) -> QResult<Option<KvEntry>> {
        self.anonymous("kv_get_no_auth")?;
        self.kv_read(project_id, scope_id, key, consistency)
    }

    fn kv_read(
        &self,
        project_id: &str,
        scope_id: &str,
        key: &[u8],
        consistency: ConsistencyMode,
    ) -> QResult<Option<KvEntry>> {
        let snapshot = self.snapshot_for(consistency)?;
        Ok(stored::kv::get(&snapshot, project_id, scope_id, key)?)
    }

    /// Keys starting with `prefix` that `caller` may read, in order, a page of at most
    /// `limit` (and `max_scan_rows` keys looked at).
    #[allow(clippy::too_many_arguments)]
    pub async fn kv_scan_prefix(
        &self,
        project_id: &str,
        scope_id: &str,
        prefix: &[u8],
        limit: u64,
        cursor: Option<String>,
        consistency: ConsistencyMode,
        caller: &CallerContext,
    ) -> QResult<KvScanResult> {
        let reach = self.kv_reach(caller, project_id, scope_id)?;
        let bounds = prefix_bounds(prefix);
        self.kv_scan(
            (project_id, scope_id),
            bounds,
            limit,
            cursor,
            consistency,
            &reach,
        )
    }

    /// Keys within the bounds that `caller` may read, in order, a page at a time.
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
        caller: &CallerContext,
    ) -> QResult<KvScanResult> {
        let reach = self.kv_reach(caller, project_id, scope_id)?;
        let bounds = (start, end);
        self.kv_scan(
            (project_id, scope_id),
            bounds,
            limit,
            cursor,
            consistency,
            &reach,
        )
    }

    /// The first page of keys starting with `prefix`, without a caller.
    pub async fn kv_scan_prefix_no_auth(
        &self,
        project_id: &str,
        scope_id: &str,
        prefix: &[u8],
        limit: u64,
        consistency: ConsistencyMode,
    ) -> QResult<Vec<(Vec<u8>, KvEntry)>> {
        self.anonymous("kv_scan_prefix_no_auth")?;
        let bounds = prefix_bounds(prefix);
        let everything = KvReach::Everything;
        let page = self.kv_scan(
            (project_id, scope_id),
            bounds,
            limit,
            None,
            consistency,
            &everything,
        )?;
        Ok(page.entries)
    }

    /// Keys within the bounds, a page at a time, without a caller (tools that read a data
    /// directory they own; refused when the instance demands callers).
    #[allow(clippy::too_many_arguments)]
    pub async fn kv_scan_range_no_auth(
        &self,
        project_id: &str,
        scope_id: &str,
        start: Bound<Vec<u8>>,
        end: Bound<Vec<u8>>,
        limit: u64,
        cursor: Option<String>,
        consistency: ConsistencyMode,
    ) -> QResult<KvScanResult> {
        self.anonymous("kv_scan_range_no_auth")?;
        let everything = KvReach::Everything;
        let bounds = (start, end);
        self.kv_scan(
            (project_id, scope_id),
            bounds,
            limit,
            cursor,
            consistency,
            &everything,
        )
    }

    fn kv_scan(
        &self,
        (project_id, scope_id): (&str, &str),
        (start, end): (Bound<Vec<u8>>, Bound<Vec<u8>>),
        limit: u64,
        cursor: Option<String>,
        consistency: ConsistencyMode,
        reach: &KvReach,
    ) -> QResult<KvScanResult> {
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
        let page = stored::kv::scan(
            &snapshot,
            (project_id, scope_id),
            (start, end),
            page_size,
            self.config.max_scan_rows,
            &|key| reach.covers(key),
        )?;
        let next = match (page.more, page.last_examined) {
            (true, Some(key)) => Some(self.cursors.encode(&PageCursor {
                snapshot_seq: snapshot.seq(),
                page_size: page_size as u32,
                last_key: key,
            })),
            _ => None,
        };
        Ok(KvScanResult {
            entries: page.entries,
            truncated: next.is_some(),
            cursor: next,
            snapshot_seq: snapshot.seq(),
        })
    }
}

/// The bounds of the keys starting with `prefix`.
pub fn prefix_bounds(prefix: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let upper = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(prefix.to_vec()), upper)
}
