//! Processors that pull events themselves and commit their state with their checkpoint in one
//! commit (`processor_pull`, `processor_commit`, `ProcessorContext`). The checkpoint is the
//! reactive processors' (`stored::processors`), so both kinds report the same lag.

use aedb_catalog::types::{Row, Value};

use crate::api::processors::check_processor_name;
use crate::api::EventOutboxRecord;
use crate::commit::envelope::{check_assertions, ReadAssertion};
use crate::commit::{CommitResult, Mutation};
use crate::error::{AedbError, Result};
use crate::query::plan::ConsistencyMode;
use crate::stored::{events, processors as checkpoints};
use crate::CommitFinality;

use super::super::{now_micros, AedbInstance};
use super::keyed_state::{check_row, delete_mutation, read_for_update, schema, write_mutation};
use super::{KeyedStateQueryRequest, ProcessorPullResult};
use crate::api::processors::delivery_snapshot;

impl AedbInstance {
    /// Events of topic `event_name` after processor `processor_id`'s checkpoint, at most
    /// `max_count` — in whole commits: a commit's events are never split (one larger than
    /// `max_count` comes whole), so a checkpoint at `last_commit_seq` skips none. Only durable
    /// events, as the reactive processors (`Full` and `Batch` durability).
    pub async fn processor_pull(
        &self,
        event_name: &str,
        processor_id: &str,
        max_count: usize,
    ) -> Result<ProcessorPullResult> {
        self.pull_after(event_name, processor_id, max_count, 0)
    }

    /// [`Self::processor_pull`] after `at_least` too (a context's own position).
    fn pull_after(
        &self,
        event_name: &str,
        processor_id: &str,
        max_count: usize,
        at_least: u64,
    ) -> Result<ProcessorPullResult> {
        self.anonymous("processor_pull")?;
        check_processor_name(processor_id)?;
        if max_count == 0 {
            return Err(AedbError::Validation("max_count must be > 0".into()));
        }
        let snapshot = delivery_snapshot(self);
        // The checkpoint as the newest commit left it: the delivery snapshot may be older (a
        // Batch interval, or the checkpoint after a replaying open), and an acknowledged move
        // of the checkpoint must not be read back as an older one, which would deliver again
        // what it covers. Should that move be lost to a power loss, this process is gone too.
        let checkpoint_seq =
            checkpoints::checkpoint(&self.engine.snapshot(), processor_id)?.unwrap_or(0);
        let from = checkpoint_seq.max(at_least);
        let topic = Some(event_name);
        let mut events = events::read_after(&snapshot, topic, from, max_count.saturating_add(1))?;
        if events.len() > max_count {
            let cut = events[max_count - 1].commit_seq;
            let split = events[max_count].commit_seq == cut;
            events.truncate(max_count);
            if split && events[0].commit_seq == cut {
                // One commit larger than the limit: whole.
                events = events::read_commit(&snapshot, topic, cut)?;
            } else if split {
                events.retain(|e| e.commit_seq != cut);
            }
        }
        Ok(ProcessorPullResult {
            last_commit_seq: events.last().map_or(from, |e| e.commit_seq),
            checkpoint_seq,
            head_seq: snapshot.seq(),
            events,
        })
    }

    /// Apply `mutations` and move processor `processor_id`'s checkpoint to `checkpoint_seq`
    /// (never back) in one commit. A checkpoint past the head, or a commit that neither
    /// changes state nor moves the checkpoint, is refused.
    pub async fn processor_commit(
        &self,
        processor_id: &str,
        checkpoint_seq: u64,
        mutations: Vec<Mutation>,
    ) -> Result<CommitResult> {
        self.processor_commit_guarded(processor_id, checkpoint_seq, mutations, Vec::new())
            .await
    }

    /// [`Self::processor_commit`], failing with `AssertionFailed` unless every one of
    /// `guards` holds in the commit (a context's reads for its updates).
    async fn processor_commit_guarded(
        &self,
        processor_id: &str,
        checkpoint_seq: u64,
        mutations: Vec<Mutation>,
        guards: Vec<ReadAssertion>,
    ) -> Result<CommitResult> {
        self.anonymous("processor_commit")?;
        check_processor_name(processor_id)?;
        let name = processor_id.to_string();
        let now = now_micros();
        let has_mutations = !mutations.is_empty();
        let outcome = self
            .commit_unchecked(mutations, CommitFinality::Visible, move |txn| {
                let head = txn.seq() - 1;
                if checkpoint_seq > head {
                    return Err(AedbError::Validation(format!(
                        "checkpoint_seq {checkpoint_seq} is beyond the head {head}"
                    )));
                }
                let current = checkpoints::checkpoint(txn, &name)?.unwrap_or(0);
                if checkpoint_seq <= current {
                    if !has_mutations {
                        return Err(AedbError::Validation(
                            "processor_commit has no mutations and does not advance the \
                             checkpoint"
                                .into(),
                        ));
                    }
                    // Effects with a checkpoint that does not move were already committed
                    // for these events (a retry, or another worker): applying them again
                    // would double them.
                    return Err(AedbError::Conflict(format!(
                        "processor {name}: checkpoint is already {current}, at or past \
                         {checkpoint_seq}; these events' effects were committed"
                    )));
                }
                check_assertions(txn, &guards)?;
                checkpoints::put_checkpoint(txn, &name, checkpoint_seq, now)
            })
            .await?;
        Ok(CommitResult::applied(
            outcome.commit_seq,
            outcome.durable_head_seq,
        ))
    }

    /// A context that gathers a processor's state changes and events, committed with its
    /// checkpoint by [`ProcessorContext::commit`].
    pub fn processor_context<'a>(
        &'a self,
        project_id: &str,
        scope_id: &str,
        processor_id: &str,
        source_event: &str,
    ) -> ProcessorContext<'a> {
        ProcessorContext {
            db: self,
            project_id: project_id.to_string(),
            scope_id: scope_id.to_string(),
            processor_id: processor_id.to_string(),
            source_event: source_event.to_string(),
            pending: Vec::new(),
            guards: Vec::new(),
            checkpoint_seq: 0,
        }
    }
}

/// A processor's unit of work: pulled events, pending writes, and the checkpoint they move.
pub struct ProcessorContext<'a> {
    db: &'a AedbInstance,
    project_id: String,
    scope_id: String,
    processor_id: String,
    source_event: String,
    pending: Vec<Mutation>,
    /// What `update` read from committed state must still be so at the commit.
    guards: Vec<ReadAssertion>,
    checkpoint_seq: u64,
}

impl ProcessorContext<'_> {
    /// Pull the next events of the source topic; the commit moves the checkpoint past them.
    pub async fn pull(&mut self, max_count: usize) -> Result<Vec<EventOutboxRecord>> {
        // After what this context already pulled, not only after the stored checkpoint.
        let pulled = self.db.pull_after(
            &self.source_event,
            &self.processor_id,
            max_count,
            self.checkpoint_seq,
        )?;
        self.checkpoint_seq = self.checkpoint_seq.max(pulled.last_commit_seq);
        Ok(pulled.events)
    }

    /// The committed row of `key` (pending writes of this context are not seen).
    pub async fn read(&self, keyed_state: &str, key: Value) -> Result<Option<Row>> {
        self.db
            .keyed_state_read(
                &self.project_id,
                &self.scope_id,
                keyed_state,
                key,
                ConsistencyMode::AtLatest,
            )
            .await
    }

    pub async fn query_index(
        &self,
        keyed_state: &str,
        req: KeyedStateQueryRequest,
    ) -> Result<Vec<Row>> {
        self.db
            .keyed_state_query_index(
                &self.project_id,
                &self.scope_id,
                keyed_state,
                req,
                ConsistencyMode::AtLatest,
            )
            .await
    }

    pub fn write(&mut self, keyed_state: &str, key: Value, value: Row) {
        let write = write_mutation(&self.project_id, &self.scope_id, keyed_state, key, value);
        self.pending.push(write);
    }

    pub fn delete(&mut self, keyed_state: &str, key: Value) {
        let delete = delete_mutation(&self.project_id, &self.scope_id, keyed_state, key);
        self.pending.push(delete);
    }

    /// Update the row of `key` as this context sees it: its own pending writes first, then
    /// the committed row — which must still be that row when the context commits, or the
    /// commit fails with `AssertionFailed` (another writer changed it: pull and retry).
    pub async fn update<F>(&mut self, keyed_state: &str, key: Value, update_fn: F) -> Result<()>
    where
        F: FnOnce(Option<Row>) -> Result<Option<Row>>,
    {
        let current = match self.pending_row(keyed_state, &key) {
            Some(pending) => pending,
            None => {
                self.db.anonymous("keyed_state_update")?;
                let snapshot = self.db.snapshot_for(ConsistencyMode::AtLatest)?;
                let schema = schema(&snapshot, &self.project_id, &self.scope_id, keyed_state)?;
                let (row, guard) = read_for_update(
                    &snapshot,
                    &schema,
                    &self.project_id,
                    &self.scope_id,
                    keyed_state,
                    &key,
                )?;
                self.guards.push(guard);
                row
            }
        };
        match update_fn(current)? {
            Some(row) => self.write(keyed_state, key, row),
            None => self.delete(keyed_state, key),
        }
        Ok(())
    }

    /// The last pending write or delete of `key`, if any (`Some(None)`: deleted).
    fn pending_row(&self, keyed_state: &str, key: &Value) -> Option<Option<Row>> {
        self.pending.iter().rev().find_map(|m| match m {
            Mutation::Upsert {
                table_name,
                primary_key,
                row,
                ..
            } if table_name == keyed_state && primary_key.first() == Some(key) => {
                Some(Some(row.clone()))
            }
            Mutation::Delete {
                table_name,
                primary_key,
                ..
            } if table_name == keyed_state && primary_key.first() == Some(key) => Some(None),
            _ => None,
        })
    }

    pub fn accumulate(&mut self, accumulator: &str, delta: i64, dedupe_id: String, order_key: u64) {
        self.pending.push(Mutation::Accumulate {
            project_id: self.project_id.clone(),
            scope_id: self.scope_id.clone(),
            accumulator_name: accumulator.into(),
            delta,
            dedupe_key: dedupe_id,
            order_key,
            release_exposure_id: None,
        });
    }

    /// The accumulator's committed (materialized) value.
    pub async fn value(&self, accumulator: &str) -> Result<i64> {
        self.db
            .accumulator_value(
                &self.project_id,
                &self.scope_id,
                accumulator,
                ConsistencyMode::AtLatest,
            )
            .await
    }

    pub fn expose(&mut self, accumulator: &str, amount: i64, dedupe_id: String) {
        self.pending.push(Mutation::ExposeAccumulator {
            project_id: self.project_id.clone(),
            scope_id: self.scope_id.clone(),
            accumulator_name: accumulator.into(),
            amount,
            exposure_id: dedupe_id,
        });
    }

    pub fn release_exposure(&mut self, accumulator: &str, dedupe_id: String) {
        self.pending.push(Mutation::ReleaseAccumulatorExposure {
            project_id: self.project_id.clone(),
            scope_id: self.scope_id.clone(),
            accumulator_name: accumulator.into(),
            exposure_id: dedupe_id,
        });
    }

    pub fn emit(&mut self, event_name: &str, event_key: String, data_json: String) {
        self.pending.push(Mutation::EmitEvent {
            project_id: self.project_id.clone(),
            scope_id: self.scope_id.clone(),
            topic: event_name.into(),
            event_key,
            payload_json: data_json,
        });
    }

    /// Check the keyed-state writes, then commit them with the checkpoint, atomically.
    pub async fn commit(self) -> Result<CommitResult> {
        let snapshot = self.db.engine.snapshot();
        for mutation in &self.pending {
            if let Mutation::Upsert {
                table_name,
                primary_key,
                row,
                ..
            } = mutation
            {
                let schema = schema(&snapshot, &self.project_id, &self.scope_id, table_name)?;
                if let Some(key) = primary_key.first() {
                    check_row(&schema, key, row)?;
                }
            }
        }
        self.db
            .processor_commit_guarded(
                &self.processor_id,
                self.checkpoint_seq,
                self.pending,
                self.guards,
            )
            .await
    }
}
