//! Configuration (`aedb::config`), named as in the original aedb.

pub use aedb_pager::IoBackendChoice;
pub use aedb_wal::RecoveryMode;

/// When commits reach the disk, and what a crash can take back.
///
/// "Acknowledged" is a commit call that returned `Ok`. A process crash (kill -9, OOM, panic)
/// keeps what the OS was given; a power loss keeps only what was fsynced. Checked row by row by
/// `engine/tests/durability_table.rs`.
///
/// | mode | finality | a commit returns after | a process crash loses | a power loss loses |
/// |---|---|---|---|---|
/// | `Full` | `Visible` | the fsync of its group | nothing acknowledged | nothing acknowledged |
/// | `Full` | `Durable` | the fsync of its group | nothing acknowledged | nothing acknowledged |
/// | `Batch` | `Visible` | the write of its group to the OS | nothing acknowledged | commits after the last sync (every `batch_interval_ms` or `batch_max_bytes`); never one at or below a returned `durable_head_seq` |
/// | `Batch` | `Durable` | an fsync of its group, at once | nothing acknowledged | nothing acknowledged |
/// | `OsBuffered` | `Visible` | the write of its group to the OS | nothing acknowledged | commits after the last sync (a Durable commit, `sync`, a checkpoint); never one at or below a returned `durable_head_seq` |
/// | `OsBuffered` | `Durable` | an fsync of its group, at once | nothing acknowledged | nothing acknowledged |
///
/// Under `Full`, `durable_head_seq >= commit_seq` on every return, as in the original aedb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DurabilityMode {
    #[default]
    Full,
    Batch,
    OsBuffered,
}

#[derive(Clone)]
pub struct AedbConfig {
    pub durability_mode: DurabilityMode,
    pub batch_interval_ms: u64,
    pub batch_max_bytes: u64,
    pub max_segment_bytes: u64,
    pub recovery_mode: RecoveryMode,
    pub hash_chain_required: bool,
    /// HMAC-SHA256 key for every WAL frame (secure mode requires one).
    pub hmac_key: Option<[u8; 32]>,
    /// Commits waiting for the writer before `QueueFull` is returned.
    pub max_inflight_commits: usize,
    /// The largest commit record (the effects of one commit), in bytes.
    pub max_transaction_bytes: u64,
    /// Checkpoint when this many bytes were logged since the last checkpoint request.
    pub checkpoint_wal_bytes: u64,
    /// Checkpoint at least this often while there are new commits (0: only by size or on demand).
    pub checkpoint_interval_ms: u64,
    /// Checkpoint when the pages only the last checkpoint still reaches pass this percentage of
    /// the data file's pages and `checkpoint_space_min_bytes`: a page a commit replaced is
    /// reused only after the next checkpoint, so this bounds the file to about the live pages
    /// plus this share under random rewrites. 0: no checkpoint for space.
    pub checkpoint_space_percent: u32,
    /// ...and not before the pages held reach this many bytes (a small file would otherwise
    /// checkpoint every few commits).
    pub checkpoint_space_min_bytes: u64,
    /// After recovery replays more than this many frames, checkpoint before the first new
    /// commit (the open returns first; reads do not wait for it). The
    /// default, 0, checkpoints after any replay: the replayed frames may have come from the page
    /// cache of a process whose fsync failed (then they are on no disk, and a later fsync does
    /// not tell), and a checkpoint makes what they did durable before any new commit builds on
    /// them. A larger value opens faster after a crash and keeps that guarantee only for
    /// failures other than a failed fsync.
    pub recovery_checkpoint_frames: u64,
    pub buffer_pool_bytes: u64,
    /// Recent commits kept readable with `ConsistencyMode::AtSeq` (their pages are pinned): at
    /// most this many, and fewer when the pages they keep from reuse would pass an eighth of
    /// the buffer pool (`engine/src/durable/retained.rs`).
    pub max_versions: usize,
    /// Rows a query or a `DeleteWhere`/`UpdateWhere` may examine per page or call.
    pub max_scan_rows: u64,
    /// Rows in one batch mutation.
    pub max_batch_rows: usize,
    pub max_kv_key_bytes: usize,
    pub max_kv_value_bytes: usize,
    /// Largest event payload (`emit_event`), in bytes of JSON text.
    pub max_event_payload_bytes: usize,
    /// Largest Text, Json or Blob value in a table row.
    pub max_table_value_bytes: usize,
    /// Page size of a new data file.
    pub page_size: u32,
    pub io_backend: IoBackendChoice,
    pub direct_io: bool,
    /// An idempotency record answers replays while it is at most this many commits old...
    pub idempotency_window_commits: u64,
    /// ...and at most this many seconds old; both 0: no record is kept.
    pub idempotency_window_seconds: u64,
    /// Who is granted `GlobalAdmin` when a secure or production open finds nobody holding it
    /// (a fresh database), so a secure database never has to be opened insecurely first.
    pub bootstrap_admin: Option<String>,
}

impl Default for AedbConfig {
    fn default() -> Self {
        AedbConfig {
            durability_mode: DurabilityMode::Full,
            batch_interval_ms: 10,
            batch_max_bytes: 1 << 20,
            max_segment_bytes: 64 << 20,
            recovery_mode: RecoveryMode::Strict,
            hash_chain_required: true,
            hmac_key: None,
            max_inflight_commits: 4096,
            max_transaction_bytes: 16 << 20,
            checkpoint_wal_bytes: 256 << 20,
            checkpoint_interval_ms: 60_000,
            checkpoint_space_percent: aedb_pager::CHECKPOINT_SPACE_PERCENT_DEFAULT,
            checkpoint_space_min_bytes: aedb_pager::CHECKPOINT_SPACE_MIN_BYTES_DEFAULT,
            recovery_checkpoint_frames: 0,
            buffer_pool_bytes: 256 << 20,
            max_versions: 1024,
            max_scan_rows: 10_000,
            max_batch_rows: 10_000,
            max_kv_key_bytes: 1024,
            max_kv_value_bytes: 1 << 20,
            max_event_payload_bytes: 64 << 10,
            max_table_value_bytes: 1 << 20,
            page_size: aedb_pager::PAGE_SIZE_DEFAULT,
            io_backend: IoBackendChoice::Auto,
            direct_io: false,
            idempotency_window_commits: 100_000,
            idempotency_window_seconds: 300,
            bootstrap_admin: None,
        }
    }
}

impl std::fmt::Debug for AedbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AedbConfig")
            .field("durability_mode", &self.durability_mode)
            .field("batch_interval_ms", &self.batch_interval_ms)
            .field("batch_max_bytes", &self.batch_max_bytes)
            .field("max_segment_bytes", &self.max_segment_bytes)
            .field("recovery_mode", &self.recovery_mode)
            .field("hash_chain_required", &self.hash_chain_required)
            .field("hmac_key", &self.hmac_key.map(|_| "<redacted>"))
            .field("max_inflight_commits", &self.max_inflight_commits)
            .field("max_transaction_bytes", &self.max_transaction_bytes)
            .field("checkpoint_wal_bytes", &self.checkpoint_wal_bytes)
            .field("checkpoint_interval_ms", &self.checkpoint_interval_ms)
            .field("checkpoint_space_percent", &self.checkpoint_space_percent)
            .field(
                "checkpoint_space_min_bytes",
                &self.checkpoint_space_min_bytes,
            )
            .field("buffer_pool_bytes", &self.buffer_pool_bytes)
            .field("max_versions", &self.max_versions)
            .field("max_scan_rows", &self.max_scan_rows)
            .field("page_size", &self.page_size)
            .field("io_backend", &self.io_backend)
            .field("direct_io", &self.direct_io)
            .field(
                "idempotency_window_commits",
                &self.idempotency_window_commits,
            )
            .field(
                "idempotency_window_seconds",
                &self.idempotency_window_seconds,
            )
            .field("bootstrap_admin", &self.bootstrap_admin)
            .finish()
    }
}

impl AedbConfig {
    /// Production profile: `Full` durability, strict recovery, hash chain and HMAC.
    pub fn production(key: [u8; 32]) -> Self {
        AedbConfig {
            hmac_key: Some(key),
            ..AedbConfig::default()
        }
    }

    /// Development profile: no fsync unless asked, permissive recovery, no hash chain.
    pub fn development() -> Self {
        AedbConfig {
            durability_mode: DurabilityMode::OsBuffered,
            recovery_mode: RecoveryMode::Permissive,
            hash_chain_required: false,
            ..AedbConfig::default()
        }
    }

    /// Low-latency profile: `Batch` durability (fsync at least every 2 ms or 512 KiB), HMAC,
    /// hash chain, strict recovery. Commits return at visibility; ask for
    /// `CommitFinality::Durable` where a commit must be on disk before the call returns.
    pub fn low_latency(key: [u8; 32]) -> Self {
        AedbConfig {
            durability_mode: DurabilityMode::Batch,
            batch_interval_ms: 2,
            batch_max_bytes: 512 << 10,
            hmac_key: Some(key),
            ..AedbConfig::default()
        }
    }

    pub fn with_hmac_key(mut self, key: [u8; 32]) -> Self {
        self.hmac_key = Some(key);
        self
    }

    pub fn strict_recovery(&self) -> bool {
        self.recovery_mode == RecoveryMode::Strict
    }

    /// What a secure or production open demands beyond [`Self::validate`]: every log frame
    /// authenticated and chained, every commit durable when it returns, no damage skipped.
    pub fn validate_secure(&self, mode: &str) -> Result<(), String> {
        if self.hmac_key.is_none() {
            return Err(format!(
                "{mode} requires hmac_key (every log frame is authenticated with it)"
            ));
        }
        if self.durability_mode != DurabilityMode::Full {
            return Err(format!(
                "{mode} requires DurabilityMode::Full (got {:?}: an acknowledged commit could be \
                 lost)",
                self.durability_mode
            ));
        }
        if !self.strict_recovery() {
            return Err(format!(
                "{mode} requires RecoveryMode::Strict (permissive recovery skips damaged frames)"
            ));
        }
        if !self.hash_chain_required {
            return Err(format!("{mode} requires hash_chain_required = true"));
        }
        if let Some(admin) = &self.bootstrap_admin {
            if admin.trim().is_empty() || admin == "system" || admin.contains('\0') {
                return Err(format!(
                    "bootstrap_admin {admin:?} is not a usable caller id (blank, reserved or \
                     contains NUL)"
                ));
            }
        }
        Ok(())
    }

    /// Reject settings that cannot work, naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_segment_bytes", self.max_segment_bytes),
            ("max_inflight_commits", self.max_inflight_commits as u64),
            ("max_transaction_bytes", self.max_transaction_bytes),
            ("buffer_pool_bytes", self.buffer_pool_bytes),
            ("checkpoint_wal_bytes", self.checkpoint_wal_bytes),
            ("max_scan_rows", self.max_scan_rows),
            ("max_batch_rows", self.max_batch_rows as u64),
            ("max_kv_key_bytes", self.max_kv_key_bytes as u64),
            ("max_kv_value_bytes", self.max_kv_value_bytes as u64),
            ("max_table_value_bytes", self.max_table_value_bytes as u64),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("{name} must be positive"));
            }
        }
        if self.checkpoint_space_percent > 100 {
            return Err("checkpoint_space_percent must be at most 100".into());
        }
        if self.durability_mode == DurabilityMode::Batch
            && (self.batch_interval_ms == 0 || self.batch_max_bytes == 0)
        {
            return Err(
                "Batch durability needs batch_interval_ms and batch_max_bytes above zero".into(),
            );
        }
        if self.max_transaction_bytes > aedb_wal::frame::MAX_PAYLOAD_BYTES as u64 {
            return Err(format!(
                "max_transaction_bytes {} exceeds the WAL frame limit of {}",
                self.max_transaction_bytes,
                aedb_wal::frame::MAX_PAYLOAD_BYTES
            ));
        }
        if self.max_segment_bytes < 64 << 10 {
            return Err("max_segment_bytes must be at least 64 KiB".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_and_validation() {
        assert!(AedbConfig::default().validate().is_ok());
        let low = AedbConfig::low_latency([7; 32]);
        assert_eq!(low.durability_mode, DurabilityMode::Batch);
        assert_eq!(low.hmac_key, Some([7; 32]));
        assert!(low.validate().is_ok());
        assert!(
            !format!("{low:?}").contains("7, 7"),
            "keys never appear in Debug output"
        );
        let bad = AedbConfig {
            batch_interval_ms: 0,
            ..low
        };
        assert!(bad.validate().unwrap_err().contains("batch_interval_ms"));
        let too_big = AedbConfig {
            max_transaction_bytes: 1 << 40,
            ..AedbConfig::default()
        };
        assert!(too_big.validate().is_err());
        assert_eq!(
            AedbConfig::development().durability_mode,
            DurabilityMode::OsBuffered
        );
    }
}
