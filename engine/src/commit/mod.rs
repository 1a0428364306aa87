//! Writes (`aedb::commit`): the `Mutation` enum (`validation`), commit results (`executor`),
//! and how mutations are applied to the trees inside a commit.

pub(crate) mod accumulators;
pub(crate) mod apply;
pub(crate) mod authz;
pub(crate) mod ddl;
pub mod envelope;
pub(crate) mod events;
pub mod executor;
pub(crate) mod grants;
pub mod kv;
pub(crate) mod lifecycle;
pub(crate) mod ownership;
pub(crate) mod policies;
mod preflight;
pub(crate) mod processors;
pub(crate) mod read_authz;
pub mod read_set;
pub(crate) mod row_rules;
pub(crate) mod tables;
pub mod validation;
pub(crate) mod wide;

pub use envelope::{
    ActionCommitOutcome, ActionCommitResult, ActionEnvelopeRequest, IdempotencyKey, ReadAssertion,
    TransactionEnvelope, WriteClass, WriteIntent,
};
pub use executor::{CommitResult, IdempotencyOutcome};
pub use kv::KvEntry;
pub use preflight::{PreflightPlan, PreflightResult};
pub use read_set::{ReadBound, ReadKey, ReadRange, ReadRangeEntry, ReadSet, ReadSetEntry};
pub use validation::Mutation;

/// Transaction envelopes and read sets (`aedb::commit::tx`), where the original has them.
pub mod tx {
    pub use super::envelope::{
        AssertionActual, IdempotencyKey, ReadAssertion, TransactionEnvelope, WriteClass,
        WriteIntent,
    };
    pub use super::preflight::PreflightPlan;
    pub use super::read_set::{
        ReadBound, ReadKey, ReadRange, ReadRangeEntry, ReadSet, ReadSetEntry,
    };
}

/// Action envelopes (`aedb::commit::action`), where the original has them.
pub mod action {
    pub use super::envelope::{ActionCommitOutcome, ActionCommitResult, ActionEnvelopeRequest};
}
