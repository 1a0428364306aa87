//! KV and counters: the KV mutations as calls, and reads and scans of KV entries.

use aedb_catalog::namespace::DEFAULT_SCOPE_ID;

use crate::commit::validation::{
    KvU256MutatorOp, KvU64MissingPolicy, KvU64MutatorOp, KvU64OverflowPolicy, KvU64UnderflowPolicy,
};
use crate::commit::{CommitResult, Mutation, TransactionEnvelope, WriteIntent};
use crate::error::Result;
use crate::permission::CallerContext;

use super::AedbInstance;

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
        self.counter_add_sharded_by(
            None,
            project_id,
            scope_id,
            key,
            amount_be,
            shard_count,
            shard_hint,
        )
        .await
    }

    /// [`Self::counter_add_sharded`] as `caller`, who needs `KvWrite` covering the key.
    #[allow(clippy::too_many_arguments)]
    pub async fn counter_add_sharded_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 8],
        shard_count: u16,
        shard_hint: u32,
    ) -> Result<CommitResult> {
        self.counter_add_sharded_by(
            Some(caller),
            project_id,
            scope_id,
            key,
            amount_be,
            shard_count,
            shard_hint,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn counter_add_sharded_by(
        &self,
        caller: Option<CallerContext>,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 8],
        shard_count: u16,
        shard_hint: u32,
    ) -> Result<CommitResult> {
        self.commit_by(
            caller,
            Mutation::CounterAdd {
                project_id: project_id.into(),
                scope_id: scope_id.into(),
                key,
                amount_be,
                shard_count,
                shard_hint,
            },
        )
        .await
    }

    pub async fn kv_inc_u256(
        &self,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 32],
    ) -> Result<CommitResult> {
        self.kv_inc_u256_by(None, project_id, scope_id, key, amount_be)
            .await
    }

    /// [`Self::kv_inc_u256`] as `caller`, who needs `KvWrite` covering the key.
    pub async fn kv_inc_u256_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 32],
    ) -> Result<CommitResult> {
        self.kv_inc_u256_by(Some(caller), project_id, scope_id, key, amount_be)
            .await
    }

    async fn kv_inc_u256_by(
        &self,
        caller: Option<CallerContext>,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 32],
    ) -> Result<CommitResult> {
        let (project_id, scope_id) = (project_id.into(), scope_id.into());
        self.commit_by(
            caller,
            Mutation::KvIncU256 {
                project_id,
                scope_id,
                key,
                amount_be,
            },
        )
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
        self.kv_dec_u256_by(None, project_id, scope_id, key, amount_be)
            .await
    }

    /// [`Self::kv_dec_u256`] as `caller`, who needs `KvWrite` covering the key.
    pub async fn kv_dec_u256_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 32],
    ) -> Result<CommitResult> {
        self.kv_dec_u256_by(Some(caller), project_id, scope_id, key, amount_be)
            .await
    }

    async fn kv_dec_u256_by(
        &self,
        caller: Option<CallerContext>,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 32],
    ) -> Result<CommitResult> {
        let (project_id, scope_id) = (project_id.into(), scope_id.into());
        self.commit_by(
            caller,
            Mutation::KvDecU256 {
                project_id,
                scope_id,
                key,
                amount_be,
            },
        )
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
        self.kv_add_u64_ex_by(
            None,
            project_id,
            scope_id,
            key,
            amount_be,
            on_missing,
            on_overflow,
        )
        .await
    }

    /// [`Self::kv_add_u64_ex`] as `caller`, who needs `KvWrite` covering the key.
    #[allow(clippy::too_many_arguments)]
    pub async fn kv_add_u64_ex_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 8],
        on_missing: KvU64MissingPolicy,
        on_overflow: KvU64OverflowPolicy,
    ) -> Result<CommitResult> {
        self.kv_add_u64_ex_by(
            Some(caller),
            project_id,
            scope_id,
            key,
            amount_be,
            on_missing,
            on_overflow,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn kv_add_u64_ex_by(
        &self,
        caller: Option<CallerContext>,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 8],
        on_missing: KvU64MissingPolicy,
        on_overflow: KvU64OverflowPolicy,
    ) -> Result<CommitResult> {
        let (project_id, scope_id) = (project_id.into(), scope_id.into());
        self.commit_by(
            caller,
            Mutation::KvAddU64Ex {
                project_id,
                scope_id,
                key,
                amount_be,
                on_missing,
                on_overflow,
            },
        )
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
        self.kv_sub_u64_ex_by(
            None,
            project_id,
            scope_id,
            key,
            amount_be,
            on_missing,
            on_underflow,
        )
        .await
    }

    /// [`Self::kv_sub_u64_ex`] as `caller`, who needs `KvWrite` covering the key.
    #[allow(clippy::too_many_arguments)]
    pub async fn kv_sub_u64_ex_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 8],
        on_missing: KvU64MissingPolicy,
        on_underflow: KvU64UnderflowPolicy,
    ) -> Result<CommitResult> {
        self.kv_sub_u64_ex_by(
            Some(caller),
            project_id,
            scope_id,
            key,
            amount_be,
            on_missing,
            on_underflow,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn kv_sub_u64_ex_by(
        &self,
        caller: Option<CallerContext>,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        amount_be: [u8; 8],
        on_missing: KvU64MissingPolicy,
        on_underflow: KvU64UnderflowPolicy,
    ) -> Result<CommitResult> {
        let (project_id, scope_id) = (project_id.into(), scope_id.into());
        self.commit_by(
            caller,
            Mutation::KvSubU64Ex {
                project_id,
                scope_id,
                key,
                amount_be,
                on_missing,
                on_underflow,
            },
        )
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
        self.kv_mutate_u64_by(
            None,
            project_id,
            scope_id,
            key,
            op,
            operand_be,
            expected_seq,
        )
        .await
    }

    /// [`Self::kv_mutate_u64`] as `caller`, who needs `KvWrite` covering the key.
    #[allow(clippy::too_many_arguments)]
    pub async fn kv_mutate_u64_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        op: KvU64MutatorOp,
        operand_be: [u8; 8],
        expected_seq: Option<u64>,
    ) -> Result<CommitResult> {
        self.kv_mutate_u64_by(
            Some(caller),
            project_id,
            scope_id,
            key,
            op,
            operand_be,
            expected_seq,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn kv_mutate_u64_by(
        &self,
        caller: Option<CallerContext>,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        op: KvU64MutatorOp,
        operand_be: [u8; 8],
        expected_seq: Option<u64>,
    ) -> Result<CommitResult> {
        let (project_id, scope_id) = (project_id.into(), scope_id.into());
        self.commit_by(
            caller,
            Mutation::KvMutateU64 {
                project_id,
                scope_id,
                key,
                op,
                operand_be,
                expected_seq,
            },
        )
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
        self.kv_mutate_u256_by(
            None,
            project_id,
            scope_id,
            key,
            op,
            operand_be,
            expected_seq,
        )
        .await
    }

    /// [`Self::kv_mutate_u256`] as `caller`, who needs `KvWrite` covering the key.
    #[allow(clippy::too_many_arguments)]
    pub async fn kv_mutate_u256_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        op: KvU256MutatorOp,
        operand_be: [u8; 32],
        expected_seq: Option<u64>,
    ) -> Result<CommitResult> {
        self.kv_mutate_u256_by(
            Some(caller),
            project_id,
            scope_id,
            key,
            op,
            operand_be,
            expected_seq,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn kv_mutate_u256_by(
        &self,
        caller: Option<CallerContext>,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        op: KvU256MutatorOp,
        operand_be: [u8; 32],
        expected_seq: Option<u64>,
    ) -> Result<CommitResult> {
        let (project_id, scope_id) = (project_id.into(), scope_id.into());
        self.commit_by(
            caller,
            Mutation::KvMutateU256 {
                project_id,
                scope_id,
                key,
                op,
                operand_be,
                expected_seq,
            },
        )
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
        let at = (project_id, scope_id);
        self.compare_and_swap_by(None, at, key, value, expected_seq)
            .await
    }

    /// [`Self::kv_compare_and_swap`] as `caller`, who needs `KvWrite` and `KvRead` covering
    /// the key (the version assertion reads it).
    pub async fn kv_compare_and_swap_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        key: Vec<u8>,
        value: Vec<u8>,
        expected_seq: u64,
    ) -> Result<CommitResult> {
        let at = (project_id, scope_id);
        self.compare_and_swap_by(Some(caller), at, key, value, expected_seq)
            .await
    }

    async fn compare_and_swap_by(
        &self,
        caller: Option<CallerContext>,
        (project_id, scope_id): (&str, &str),
        key: Vec<u8>,
        value: Vec<u8>,
        expected_seq: u64,
    ) -> Result<CommitResult> {
        let envelope = TransactionEnvelope {
            caller,
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
}
