//! Commit results (`aedb::commit::executor`).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IdempotencyOutcome {
    #[default]
    Applied,
    /// The idempotency key was seen: nothing was written; the sequences are the original's.
    Duplicate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitResult {
    pub commit_seq: u64,
    pub durable_head_seq: u64,
    pub idempotency: IdempotencyOutcome,
    pub canonical_commit_seq: u64,
}

impl CommitResult {
    /// A commit that applied, at `commit_seq`.
    pub fn applied(commit_seq: u64, durable_head_seq: u64) -> Self {
        CommitResult {
            commit_seq,
            durable_head_seq,
            idempotency: IdempotencyOutcome::Applied,
            canonical_commit_seq: commit_seq,
        }
    }
}
