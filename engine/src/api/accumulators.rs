//! Accumulators (README "Data model"): create and drop, exactly-once deltas, projected and
//! strong values, lag, exposures. Writes build a `Mutation`; reads take a snapshot by
//! consistency mode and ask the owner (`stored::accumulators`).
//!
//! The `_as` forms check the caller's grants: writes need `KvWrite` covering the accumulator's
//! name (as the original); the read forms arrive with the rest of the permissions.

use aedb_catalog::schema::AccumulatorValueType;
use aedb_catalog::DdlOperation;

use crate::commit::accumulators::{healthy_effective, record_rejection, require};
use crate::commit::apply::RefusedExposures;
use crate::commit::{CommitResult, Mutation};
use crate::durable::CommitOutcome;
use crate::error::{AedbError, Result};
use crate::permission::CallerContext;
use crate::query::plan::ConsistencyMode;
use crate::stored::accumulators::{self as stored, Acc, State};
use crate::CommitFinality;

use super::AedbInstance;

/// How far the materialized value trails the accepted deltas (`accumulator_lag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccumulatorLag {
    pub latest_order_key: u64,
    pub last_applied_order_key: u64,
    pub lag_orders: u64,
    pub latest_seq: u64,
    pub materialized_seq: u64,
    pub lag_commits: u64,
    pub unapplied_deltas: usize,
    pub projector_error: Option<String>,
}

/// Open exposure of an accumulator (`accumulator_exposure_metrics`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccumulatorExposureMetrics {
    pub total_exposure: i64,
    /// The effective value less the open exposure (the margin is not subtracted).
    pub available: i64,
    /// Exposures refused by the margin rule.
    pub rejection_count: u64,
    pub open_exposure_count: usize,
}

/// The margin the README's `create_accumulator` uses: 10 %.
const DEFAULT_MARGIN_BPS: u32 = 1_000;

fn acc<'a>(project: &'a str, scope: &'a str, name: &'a str) -> Acc<'a> {
    Acc {
        project,
        scope,
        name,
    }
}

/// Available amounts are reported clamped to i64, so the other metrics stay readable however
/// far exposures and a negative value push them.
fn clamp_i64(value: i128) -> i64 {
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// A delta as the accumulate calls take it.
struct AccDelta {
    delta: i64,
    dedupe_key: String,
    order_key: u64,
    release_exposure_id: Option<String>,
}

impl AccDelta {
    fn mutation(self, acc: Acc<'_>) -> Mutation {
        Mutation::Accumulate {
            project_id: acc.project.into(),
            scope_id: acc.scope.into(),
            accumulator_name: acc.name.into(),
            delta: self.delta,
            dedupe_key: self.dedupe_key,
            order_key: self.order_key,
            release_exposure_id: self.release_exposure_id,
        }
    }
}

fn expose(acc: Acc<'_>, amount: i64, exposure_id: String) -> Mutation {
    Mutation::ExposeAccumulator {
        project_id: acc.project.into(),
        scope_id: acc.scope.into(),
        accumulator_name: acc.name.into(),
        amount,
        exposure_id,
    }
}

fn to_i64(value: i128) -> Result<i64> {
    i64::try_from(value).map_err(|_| AedbError::Overflow)
}

impl AedbInstance {
    /// Count the exposures a failed commit refused, each in a commit of its own, then return
    /// the failed commit's outcome unchanged.
    pub(super) async fn count_refused_exposures<T>(
        &self,
        outcome: Result<CommitOutcome<T>>,
        refused: &RefusedExposures,
    ) -> Result<CommitOutcome<T>> {
        if outcome.is_err() {
            let refused: Vec<_> = std::mem::take(&mut *refused.lock());
            for refusal in refused {
                let counted = self
                    .engine
                    .commit(CommitFinality::Visible, move |txn| {
                        record_rejection(txn, &refusal)
                    })
                    .await;
                if let Err(err) = counted {
                    tracing::warn!(%err, "an exposure refusal was not counted");
                }
            }
        }
        outcome
    }

    // ---- creation ----

    /// Create an accumulator with a 10 % exposure margin and no exposure TTL.
    pub async fn create_accumulator(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        dedupe_retain_commits: Option<u64>,
        snapshot_every: u64,
    ) -> Result<CommitResult> {
        self.create_accumulator_with_options(
            project_id,
            scope_id,
            accumulator_name,
            dedupe_retain_commits,
            snapshot_every,
            DEFAULT_MARGIN_BPS,
            None,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_accumulator_with_options(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        dedupe_retain_commits: Option<u64>,
        snapshot_every: u64,
        exposure_margin_bps: u32,
        exposure_ttl_commits: Option<u64>,
    ) -> Result<CommitResult> {
        self.commit(Mutation::Ddl(DdlOperation::CreateAccumulator {
            project_id: project_id.into(),
            scope_id: scope_id.into(),
            accumulator_name: accumulator_name.into(),
            if_not_exists: false,
            value_type: AccumulatorValueType::BigInt,
            dedupe_retain_commits,
            snapshot_every,
            exposure_margin_bps,
            exposure_ttl_commits,
        }))
        .await
    }

    /// Drop an accumulator and everything it holds (a no-op if it does not exist).
    pub async fn drop_accumulator(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
    ) -> Result<CommitResult> {
        self.commit(Mutation::Ddl(DdlOperation::DropAccumulator {
            project_id: project_id.into(),
            scope_id: scope_id.into(),
            accumulator_name: accumulator_name.into(),
            if_exists: true,
        }))
        .await
    }

    // ---- deltas ----

    /// Add `delta` once per `dedupe_key`; `order_key` must exceed every earlier one.
    pub async fn accumulate(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        delta: i64,
        dedupe_key: String,
        order_key: u64,
    ) -> Result<CommitResult> {
        self.accumulate_with_release(
            project_id,
            scope_id,
            accumulator_name,
            delta,
            dedupe_key,
            order_key,
            None,
        )
        .await
    }

    /// [`Self::accumulate`], releasing an open exposure in the same commit when the delta is
    /// new.
    #[allow(clippy::too_many_arguments)]
    pub async fn accumulate_with_release(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        delta: i64,
        dedupe_key: String,
        order_key: u64,
        release_exposure_id: Option<String>,
    ) -> Result<CommitResult> {
        let delta = AccDelta {
            delta,
            dedupe_key,
            order_key,
            release_exposure_id,
        };
        self.commit(delta.mutation(acc(project_id, scope_id, accumulator_name)))
            .await
    }

    /// [`Self::accumulate`] as `caller`, who needs `KvWrite` covering the accumulator's name.
    #[allow(clippy::too_many_arguments)]
    pub async fn accumulate_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        delta: i64,
        dedupe_key: String,
        order_key: u64,
    ) -> Result<CommitResult> {
        self.accumulate_with_release_as(
            caller,
            project_id,
            scope_id,
            accumulator_name,
            delta,
            dedupe_key,
            order_key,
            None,
        )
        .await
    }

    /// [`Self::accumulate_with_release`] as `caller`.
    #[allow(clippy::too_many_arguments)]
    pub async fn accumulate_with_release_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        delta: i64,
        dedupe_key: String,
        order_key: u64,
        release_exposure_id: Option<String>,
    ) -> Result<CommitResult> {
        let delta = AccDelta {
            delta,
            dedupe_key,
            order_key,
            release_exposure_id,
        };
        let mutation = delta.mutation(acc(project_id, scope_id, accumulator_name));
        self.commit_as(caller, mutation).await
    }

    // ---- exposures ----

    /// Reserve `amount` against the accumulator under `exposure_id`, refused past the margin.
    pub async fn expose_accumulator(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        amount: i64,
        exposure_id: String,
    ) -> Result<CommitResult> {
        self.commit(expose(
            acc(project_id, scope_id, accumulator_name),
            amount,
            exposure_id,
        ))
        .await
    }

    /// [`Self::expose_accumulator`] as `caller`, who needs `KvWrite` covering the
    /// accumulator's name.
    pub async fn expose_accumulator_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        amount: i64,
        exposure_id: String,
    ) -> Result<CommitResult> {
        let mutation = expose(
            acc(project_id, scope_id, accumulator_name),
            amount,
            exposure_id,
        );
        self.commit_as(caller, mutation).await
    }

    /// [`Self::expose_accumulator`] after an advisory preflight of the same mutation.
    pub async fn expose_accumulator_with_preflight(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        amount: i64,
        exposure_id: String,
    ) -> Result<CommitResult> {
        self.commit_with_preflight(expose(
            acc(project_id, scope_id, accumulator_name),
            amount,
            exposure_id,
        ))
        .await
    }

    /// Several exposures, all or none.
    pub async fn expose_accumulator_many_atomic(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        exposures: Vec<(i64, String)>,
    ) -> Result<CommitResult> {
        if exposures.is_empty() {
            return Err(AedbError::Validation(
                "expose_accumulator_many_atomic requires at least one exposure".into(),
            ));
        }
        self.commit(Mutation::ExposeAccumulatorBatch {
            project_id: project_id.into(),
            scope_id: scope_id.into(),
            accumulator_name: accumulator_name.into(),
            exposures,
        })
        .await
    }

    pub async fn release_accumulator_exposure(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        exposure_id: String,
    ) -> Result<CommitResult> {
        self.commit(Mutation::ReleaseAccumulatorExposure {
            project_id: project_id.into(),
            scope_id: scope_id.into(),
            accumulator_name: accumulator_name.into(),
            exposure_id,
        })
        .await
    }

    // ---- reads ----

    fn accumulator_state(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<State> {
        let snapshot = self.snapshot_for(consistency)?;
        let acc = acc(project_id, scope_id, accumulator_name);
        require(&snapshot, acc)?;
        stored::state(&snapshot, acc)
    }

    /// The materialized value: every delta folded so far.
    pub async fn accumulator_value(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<i64> {
        Ok(self
            .accumulator_state(project_id, scope_id, accumulator_name, consistency)?
            .value)
    }

    /// The effective value: materialized plus every accepted delta not folded yet.
    pub async fn accumulator_value_strong(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<i64> {
        let state = self.accumulator_state(project_id, scope_id, accumulator_name, consistency)?;
        to_i64(healthy_effective(&state)?)
    }

    pub async fn accumulator_lag(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<AccumulatorLag> {
        let state = self.accumulator_state(project_id, scope_id, accumulator_name, consistency)?;
        let latest_order_key = state.latest_order_key.unwrap_or(0);
        Ok(AccumulatorLag {
            latest_order_key,
            last_applied_order_key: state.last_applied_order_key,
            lag_orders: latest_order_key.saturating_sub(state.last_applied_order_key),
            latest_seq: state.latest_seq,
            materialized_seq: state.materialized_seq,
            lag_commits: state.latest_seq.saturating_sub(state.materialized_seq),
            unapplied_deltas: state.unapplied_deltas as usize,
            projector_error: state.projector_error,
        })
    }

    /// The total of the open exposures.
    pub async fn accumulator_exposure(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<i64> {
        Ok(self
            .accumulator_state(project_id, scope_id, accumulator_name, consistency)?
            .total_exposure)
    }

    /// The effective value less the open exposure.
    pub async fn accumulator_available(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<i64> {
        let state = self.accumulator_state(project_id, scope_id, accumulator_name, consistency)?;
        Ok(clamp_i64(
            healthy_effective(&state)? - i128::from(state.total_exposure),
        ))
    }

    pub async fn accumulator_exposure_metrics(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<AccumulatorExposureMetrics> {
        let state = self.accumulator_state(project_id, scope_id, accumulator_name, consistency)?;
        Ok(AccumulatorExposureMetrics {
            total_exposure: state.total_exposure,
            available: clamp_i64(healthy_effective(&state)? - i128::from(state.total_exposure)),
            rejection_count: state.rejections,
            open_exposure_count: state.open_exposures as usize,
        })
    }
}
