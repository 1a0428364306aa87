//! Accumulators (README "Data model"): create and drop, exactly-once deltas, projected and
//! strong values, lag, exposures. Writes build a `Mutation`; reads take a snapshot by
//! consistency mode and ask the owner (`stored::accumulators`).
//!
//! The `_as` forms check the caller's grants: writes need `KvWrite` covering the accumulator's
//! name (as the original); reads (`accumulator_reads.rs`) need `KvRead` covering it.

use aedb_catalog::schema::AccumulatorValueType;
use aedb_catalog::DdlOperation;

use crate::commit::accumulators::record_rejection;
use crate::commit::apply::RefusedExposures;
use crate::commit::{CommitResult, Mutation};
use crate::durable::CommitOutcome;
use crate::error::{AedbError, Result};
use crate::permission::CallerContext;
use crate::stored::accumulators::Acc;
use crate::CommitFinality;

use super::AedbInstance;

/// The margin the README's `create_accumulator` uses: 10 %.
const DEFAULT_MARGIN_BPS: u32 = 1_000;

pub(super) fn acc<'a>(project: &'a str, scope: &'a str, name: &'a str) -> Acc<'a> {
    Acc {
        project,
        scope,
        name,
    }
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

fn release(acc: Acc<'_>, exposure_id: String) -> Mutation {
    Mutation::ReleaseAccumulatorExposure {
        project_id: acc.project.into(),
        scope_id: acc.scope.into(),
        accumulator_name: acc.name.into(),
        exposure_id,
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
        let options = (snapshot_every, exposure_margin_bps, exposure_ttl_commits);
        let name = acc(project_id, scope_id, accumulator_name);
        self.create_accumulator_by(None, name, dedupe_retain_commits, options)
            .await
    }

    /// [`Self::create_accumulator`] as `caller`, who needs `TableDdl` in the project.
    pub async fn create_accumulator_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        dedupe_retain_commits: Option<u64>,
        snapshot_every: u64,
    ) -> Result<CommitResult> {
        let options = (snapshot_every, DEFAULT_MARGIN_BPS, None);
        let name = acc(project_id, scope_id, accumulator_name);
        self.create_accumulator_by(Some(caller), name, dedupe_retain_commits, options)
            .await
    }

    async fn create_accumulator_by(
        &self,
        caller: Option<CallerContext>,
        Acc {
            project: project_id,
            scope: scope_id,
            name: accumulator_name,
        }: Acc<'_>,
        dedupe_retain_commits: Option<u64>,
        (snapshot_every, exposure_margin_bps, exposure_ttl_commits): (u64, u32, Option<u64>),
    ) -> Result<CommitResult> {
        let create = Mutation::Ddl(DdlOperation::CreateAccumulator {
            project_id: project_id.into(),
            scope_id: scope_id.into(),
            accumulator_name: accumulator_name.into(),
            if_not_exists: false,
            value_type: AccumulatorValueType::BigInt,
            dedupe_retain_commits,
            snapshot_every,
            exposure_margin_bps,
            exposure_ttl_commits,
        });
        self.commit_by(caller, create).await
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
        let name = acc(project_id, scope_id, accumulator_name);
        self.expose_many_by(None, name, exposures).await
    }

    /// [`Self::expose_accumulator_many_atomic`] as `caller`.
    pub async fn expose_accumulator_many_atomic_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        exposures: Vec<(i64, String)>,
    ) -> Result<CommitResult> {
        let name = acc(project_id, scope_id, accumulator_name);
        self.expose_many_by(Some(caller), name, exposures).await
    }

    async fn expose_many_by(
        &self,
        caller: Option<CallerContext>,
        name: Acc<'_>,
        exposures: Vec<(i64, String)>,
    ) -> Result<CommitResult> {
        if exposures.is_empty() {
            return Err(AedbError::Validation(
                "expose_accumulator_many_atomic requires at least one exposure".into(),
            ));
        }
        let batch = Mutation::ExposeAccumulatorBatch {
            project_id: name.project.into(),
            scope_id: name.scope.into(),
            accumulator_name: name.name.into(),
            exposures,
        };
        self.commit_by(caller, batch).await
    }

    pub async fn release_accumulator_exposure(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        exposure_id: String,
    ) -> Result<CommitResult> {
        let name = acc(project_id, scope_id, accumulator_name);
        self.commit(release(name, exposure_id)).await
    }

    /// [`Self::release_accumulator_exposure`] as `caller`.
    pub async fn release_accumulator_exposure_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        exposure_id: String,
    ) -> Result<CommitResult> {
        let name = acc(project_id, scope_id, accumulator_name);
        self.commit_as(caller, release(name, exposure_id)).await
    }
}
