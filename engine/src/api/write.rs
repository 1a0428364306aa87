//! Writes: commits of mutations, many at once, envelopes, DDL; preflight.

use aedb_catalog::{DdlOperation, DdlResult};

use crate::commit::apply::{apply, Applied};
use crate::commit::authz::{authorize, authorize_preflight, stamp_actor};
use crate::commit::envelope::{apply_envelope, EnvelopeOutcome};
use crate::commit::lifecycle;
use crate::commit::policies::restrict;
use crate::commit::read_authz::authorize_envelope_reads;
use crate::commit::read_set::{plan_read_set, ReadSet};
use crate::commit::{
    ActionCommitOutcome, ActionCommitResult, ActionEnvelopeRequest, CommitResult,
    IdempotencyOutcome, Mutation, PreflightPlan, PreflightResult, TransactionEnvelope, WriteIntent,
};
use crate::error::{AedbError, Result};
use crate::permission::CallerContext;
use crate::stored::audit::{self, AssertionFailure};
use crate::CommitFinality;

use super::AedbInstance;

impl AedbInstance {
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

    /// Commit one mutation as `caller`: refused with `PermissionDenied` unless the caller's
    /// grants cover what the mutation needs (checked in the commit, against its state). A
    /// grant or revoke records the caller as its actor.
    pub async fn commit_as(
        &self,
        caller: CallerContext,
        mutation: Mutation,
    ) -> Result<CommitResult> {
        self.commit_as_with_finality(caller, mutation, CommitFinality::Visible)
            .await
    }

    pub async fn commit_as_with_finality(
        &self,
        caller: CallerContext,
        mutation: Mutation,
        finality: CommitFinality,
    ) -> Result<CommitResult> {
        self.commit_many_checked(vec![mutation], finality, Some(caller))
            .await
            .map(|(r, _)| r)
    }

    /// Commit one mutation as `caller`, or anonymously: the one path of a call and its `_as`
    /// form.
    pub(super) async fn commit_by(
        &self,
        caller: Option<CallerContext>,
        mutation: Mutation,
    ) -> Result<CommitResult> {
        match caller {
            Some(caller) => self.commit_as(caller, mutation).await,
            None => self.commit(mutation).await,
        }
    }

    pub(super) async fn commit_many_with_finality(
        &self,
        mutations: Vec<Mutation>,
        finality: CommitFinality,
    ) -> Result<(CommitResult, Vec<Applied>)> {
        self.commit_many_checked(mutations, finality, None).await
    }

    /// Commit `mutations` atomically; with a caller, each is authorized first, in the commit.
    async fn commit_many_checked(
        &self,
        mutations: Vec<Mutation>,
        finality: CommitFinality,
        caller: Option<CallerContext>,
    ) -> Result<(CommitResult, Vec<Applied>)> {
        self.may_commit(caller.as_ref(), "commit")?;
        let actor = caller.as_ref().map(|c| c.caller_id.as_str());
        let mutations = mutations
            .into_iter()
            .map(|m| stamp_actor(m, actor))
            .collect::<Vec<_>>();
        let limits = self.limits();
        let refused = limits.refused_exposures.clone();
        let outcome = self
            .engine
            .commit(finality, move |txn| {
                let mutations = match &caller {
                    Some(caller) => mutations
                        .into_iter()
                        .map(|mutation| {
                            authorize(txn, caller, &mutation)?;
                            restrict(txn, caller, mutation)
                        })
                        .collect::<Result<Vec<_>>>()?,
                    None => mutations,
                };
                apply_recorded(txn, &mutations, &limits)
            })
            .await;
        let outcome = self.count_refused_exposures(outcome, &refused).await?;
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

    /// Commit `mutations` atomically as no caller — for engine-driven commits whose gate is
    /// their own (`processor_commit`) — with `extra` run first in the same commit. Like every
    /// commit: actors stamped, lifecycle recorded, refused exposures counted.
    pub(super) async fn commit_unchecked<T: Send + 'static>(
        &self,
        mutations: Vec<Mutation>,
        finality: CommitFinality,
        extra: impl FnOnce(&mut crate::durable::LoggedTxn) -> Result<T> + Send + 'static,
    ) -> Result<crate::durable::CommitOutcome<T>> {
        let mutations: Vec<Mutation> = mutations
            .into_iter()
            .map(|m| stamp_actor(m, None))
            .collect();
        let limits = self.limits();
        let refused = limits.refused_exposures.clone();
        let outcome = self
            .engine
            .commit(finality, move |txn| {
                let value = extra(txn)?;
                apply_recorded(txn, &mutations, &limits)?;
                Ok(value)
            })
            .await;
        let outcome = self.count_refused_exposures(outcome, &refused).await?;
        Ok(outcome)
    }

    /// Record a failed assertion in `assertion_audit`, in a commit of its own (the failed
    /// commit wrote nothing). Best effort: the caller gets the assertion's error either way.
    async fn audit_assertion(
        &self,
        caller_id: Option<String>,
        index: usize,
        assertion: &crate::commit::ReadAssertion,
        actual: &crate::commit::tx::AssertionActual,
    ) {
        let failure = AssertionFailure {
            caller_id,
            assertion_index: index as u64,
            assertion_json: serde_json::to_string(assertion).unwrap_or_else(|_| "null".into()),
            actual_json: serde_json::to_string(actual).unwrap_or_else(|_| "null".into()),
        };
        let now = super::now_micros();
        let recorded = self
            .engine
            .commit(CommitFinality::Visible, move |txn| {
                audit::record_assertion(txn, now, &failure)
            })
            .await;
        if let Err(err) = recorded {
            tracing::warn!(%err, "a failed assertion was not recorded in assertion_audit");
        }
    }

    /// Whether a commit by `caller` (None: anonymous) may be attempted at all.
    fn may_commit(&self, caller: Option<&CallerContext>, call: &str) -> Result<()> {
        match caller {
            Some(caller) => caller.check_external(),
            None => self.anonymous(call),
        }
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
        self.may_commit(envelope.caller.as_ref(), "commit_envelope")?;
        let limits = self.limits();
        let refused = limits.refused_exposures.clone();
        let finality = if envelope.write_class == crate::commit::WriteClass::Economic {
            CommitFinality::Durable
        } else {
            finality
        };
        let caller_id = envelope.caller.as_ref().map(|c| c.caller_id.clone());
        let outcome = self
            .engine
            .commit(finality, move |txn| apply_envelope(txn, &envelope, &limits))
            .await;
        if let Err(AedbError::AssertionFailed {
            index,
            assertion,
            actual,
        }) = &outcome
        {
            self.audit_assertion(caller_id, *index, assertion, actual)
                .await;
        }
        let outcome = self.count_refused_exposures(outcome, &refused).await?;
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
        self.preflight_checked(None, mutation).await
    }

    /// [`Self::preflight`] as `caller`: a mutation the caller may not run is reported as
    /// refused, as its commit would be.
    pub async fn preflight_as(
        &self,
        caller: &CallerContext,
        mutation: Mutation,
    ) -> PreflightResult {
        self.preflight_checked(Some(caller.clone()), mutation).await
    }

    /// Commit as `caller`, validated against the latest state in the writer (as every commit).
    pub async fn commit_as_with_preflight(
        &self,
        caller: CallerContext,
        mutation: Mutation,
    ) -> Result<CommitResult> {
        self.commit_as(caller, mutation).await
    }

    async fn preflight_checked(
        &self,
        caller: Option<CallerContext>,
        mutation: Mutation,
    ) -> PreflightResult {
        if let Err(err) = self.may_commit(caller.as_ref(), "preflight") {
            return PreflightResult::Err {
                reason: err.to_string(),
            };
        }
        let limits = self.limits();
        match self
            .engine
            .dry_run(move |txn| {
                let mutation = match &caller {
                    Some(caller) => authorize_preflight(txn, caller, mutation)?,
                    None => mutation,
                };
                apply(txn, &mutation, &limits)
            })
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
        self.preflight_plan_checked(None, mutation).await
    }

    /// [`Self::preflight_plan`] as `caller`: invalid when the caller may not run it.
    pub async fn preflight_plan_as(
        &self,
        caller: &CallerContext,
        mutation: Mutation,
    ) -> PreflightPlan {
        self.preflight_plan_checked(Some(caller.clone()), mutation)
            .await
    }

    async fn preflight_plan_checked(
        &self,
        caller: Option<CallerContext>,
        mutation: Mutation,
    ) -> PreflightPlan {
        let limits = self.limits();
        let snapshot = self.engine.snapshot();
        let base_seq = snapshot.seq();
        let write_intent = WriteIntent {
            mutations: vec![mutation.clone()],
        };
        let allowed = self.may_commit(caller.as_ref(), "preflight_plan");
        let planned = async {
            allowed?;
            self.engine
                .dry_run(move |txn| {
                    let mutation = match &caller {
                        Some(caller) => authorize_preflight(txn, caller, mutation)?,
                        None => mutation,
                    };
                    let applied = apply(txn, &mutation, &limits)?;
                    let touched = txn.touched()?;
                    let read_set = plan_read_set(&snapshot, &mutation, &touched)?;
                    if let Some(caller) = &caller {
                        // A plan the caller's envelope would refuse (a read set over a table
                        // whose read policy applies to it) is no plan.
                        authorize_envelope_reads(&snapshot, caller, &[], &read_set)?;
                    }
                    Ok((applied.affected_rows, touched, read_set))
                })
                .await
        }
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
}

/// Apply a commit's mutations in order and record what they did for the lifecycle hooks.
fn apply_recorded(
    txn: &mut crate::durable::LoggedTxn,
    mutations: &[Mutation],
    limits: &crate::commit::apply::Limits,
) -> Result<Vec<Applied>> {
    let mut events = Vec::new();
    let wanted = lifecycle::wanted(mutations, limits);
    let applied = mutations
        .iter()
        .map(|m| lifecycle::apply_noting(txn, m, limits, wanted.then_some(&mut events)))
        .collect::<Result<Vec<_>>>()?;
    lifecycle::record(txn, events, limits)?;
    Ok(applied)
}
