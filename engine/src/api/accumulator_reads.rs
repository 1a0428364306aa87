//! Accumulator reads: values, lag and exposure on a snapshot chosen by consistency mode,
//! from the owner (`stored::accumulators`). Each has an `_as` form for a caller, who needs
//! `KvRead` covering the accumulator's name; the anonymous form is refused when the instance
//! demands callers.

use crate::commit::accumulators::{healthy_effective, require};
use crate::error::{AedbError, Result};
use crate::permission::CallerContext;
use crate::query::plan::ConsistencyMode;
use crate::stored::accumulators::{self as stored, State};

use super::accumulators::acc;
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

/// Available amounts are reported clamped to i64, so the other metrics stay readable however
/// far exposures and a negative value push them.
fn clamp_i64(value: i128) -> i64 {
    value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn to_i64(value: i128) -> Result<i64> {
    i64::try_from(value).map_err(|_| AedbError::Overflow)
}

fn lag(state: &State) -> Result<AccumulatorLag> {
    let latest_order_key = state.latest_order_key.unwrap_or(0);
    Ok(AccumulatorLag {
        latest_order_key,
        last_applied_order_key: state.last_applied_order_key,
        lag_orders: latest_order_key.saturating_sub(state.last_applied_order_key),
        latest_seq: state.latest_seq,
        materialized_seq: state.materialized_seq,
        lag_commits: state.latest_seq.saturating_sub(state.materialized_seq),
        unapplied_deltas: state.unapplied_deltas as usize,
        projector_error: state.projector_error.clone(),
    })
}

fn metrics(state: &State) -> Result<AccumulatorExposureMetrics> {
    Ok(AccumulatorExposureMetrics {
        total_exposure: state.total_exposure,
        available: clamp_i64(healthy_effective(state)? - i128::from(state.total_exposure)),
        rejection_count: state.rejections,
        open_exposure_count: state.open_exposures as usize,
    })
}

fn value(state: &State) -> Result<i64> {
    Ok(state.value)
}

fn strong_value(state: &State) -> Result<i64> {
    to_i64(healthy_effective(state)?)
}

fn exposure(state: &State) -> Result<i64> {
    Ok(state.total_exposure)
}

fn available(state: &State) -> Result<i64> {
    Ok(clamp_i64(
        healthy_effective(state)? - i128::from(state.total_exposure),
    ))
}

impl AedbInstance {
    /// What `read` finds in the accumulator's state, for `caller` (None: anonymous).
    fn accumulator_read<T>(
        &self,
        caller: Option<&CallerContext>,
        (project_id, scope_id, accumulator_name): (&str, &str, &str),
        consistency: ConsistencyMode,
        read: fn(&State) -> Result<T>,
    ) -> Result<T> {
        match caller {
            Some(caller) => {
                self.check_kv_read(caller, project_id, scope_id, accumulator_name.as_bytes())?
            }
            None => self.anonymous("an accumulator read")?,
        }
        let snapshot = self.snapshot_for(consistency)?;
        let acc = acc(project_id, scope_id, accumulator_name);
        require(&snapshot, acc)?;
        read(&stored::state(&snapshot, acc)?)
    }

    /// The materialized value: every delta folded so far.
    pub async fn accumulator_value(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<i64> {
        let name = (project_id, scope_id, accumulator_name);
        self.accumulator_read(None, name, consistency, value)
    }

    /// [`Self::accumulator_value`] as `caller`.
    pub async fn accumulator_value_as(
        &self,
        caller: &CallerContext,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<i64> {
        let name = (project_id, scope_id, accumulator_name);
        self.accumulator_read(Some(caller), name, consistency, value)
    }

    /// The effective value: materialized plus every accepted delta not folded yet.
    pub async fn accumulator_value_strong(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<i64> {
        let name = (project_id, scope_id, accumulator_name);
        self.accumulator_read(None, name, consistency, strong_value)
    }

    /// [`Self::accumulator_value_strong`] as `caller`.
    pub async fn accumulator_value_strong_as(
        &self,
        caller: &CallerContext,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<i64> {
        let name = (project_id, scope_id, accumulator_name);
        self.accumulator_read(Some(caller), name, consistency, strong_value)
    }

    /// How far the materialized value trails the accepted deltas.
    pub async fn accumulator_lag(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<AccumulatorLag> {
        let name = (project_id, scope_id, accumulator_name);
        self.accumulator_read(None, name, consistency, lag)
    }

    /// [`Self::accumulator_lag`] as `caller`.
    pub async fn accumulator_lag_as(
        &self,
        caller: &CallerContext,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<AccumulatorLag> {
        let name = (project_id, scope_id, accumulator_name);
        self.accumulator_read(Some(caller), name, consistency, lag)
    }

    /// The total of the open exposures.
    pub async fn accumulator_exposure(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<i64> {
        let name = (project_id, scope_id, accumulator_name);
        self.accumulator_read(None, name, consistency, exposure)
    }

    /// [`Self::accumulator_exposure`] as `caller`.
    pub async fn accumulator_exposure_as(
        &self,
        caller: &CallerContext,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<i64> {
        let name = (project_id, scope_id, accumulator_name);
        self.accumulator_read(Some(caller), name, consistency, exposure)
    }

    /// The effective value less the open exposure.
    pub async fn accumulator_available(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<i64> {
        let name = (project_id, scope_id, accumulator_name);
        self.accumulator_read(None, name, consistency, available)
    }

    /// [`Self::accumulator_available`] as `caller`.
    pub async fn accumulator_available_as(
        &self,
        caller: &CallerContext,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<i64> {
        let name = (project_id, scope_id, accumulator_name);
        self.accumulator_read(Some(caller), name, consistency, available)
    }

    /// Open exposure, what is available, and refusals.
    pub async fn accumulator_exposure_metrics(
        &self,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<AccumulatorExposureMetrics> {
        let name = (project_id, scope_id, accumulator_name);
        self.accumulator_read(None, name, consistency, metrics)
    }

    /// [`Self::accumulator_exposure_metrics`] as `caller`.
    pub async fn accumulator_exposure_metrics_as(
        &self,
        caller: &CallerContext,
        project_id: &str,
        scope_id: &str,
        accumulator_name: &str,
        consistency: ConsistencyMode,
    ) -> Result<AccumulatorExposureMetrics> {
        let name = (project_id, scope_id, accumulator_name);
        self.accumulator_read(Some(caller), name, consistency, metrics)
    }
}
