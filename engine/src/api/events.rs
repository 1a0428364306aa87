//! Events (README "Data model"): `emit_event` stores an event in the outbox table
//! `_system.app.event_outbox` in the commit's own transaction; `read_event_stream` pages
//! through it by commit sequence. The outbox is an ordinary table, so the query API reads it
//! too.

use crate::commit::{CommitResult, Mutation};
use crate::error::Result;
use crate::permission::CallerContext;
use crate::query::plan::ConsistencyMode;
use crate::stored::events;

pub use crate::stored::events::EventOutboxRecord;

use super::security::system_table;
use super::AedbInstance;

/// A page of the event stream (`read_event_stream`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventStreamPage {
    pub events: Vec<EventOutboxRecord>,
    /// The commit of the last event returned: pass it as the next page's
    /// `from_commit_seq_exclusive`. `None` when the page is empty.
    pub next_commit_seq: Option<u64>,
    /// The snapshot the page was read from.
    pub snapshot_seq: u64,
}

fn emit(
    project_id: &str,
    scope_id: &str,
    topic: &str,
    event_key: String,
    payload_json: String,
) -> Mutation {
    Mutation::EmitEvent {
        project_id: project_id.into(),
        scope_id: scope_id.into(),
        topic: topic.into(),
        event_key,
        payload_json,
    }
}

impl AedbInstance {
    /// Emit an event on `topic` (identifier rules), keyed by `event_key`, with a JSON payload.
    pub async fn emit_event(
        &self,
        project_id: &str,
        scope_id: &str,
        topic: &str,
        event_key: String,
        payload_json: String,
    ) -> Result<CommitResult> {
        self.commit(emit(project_id, scope_id, topic, event_key, payload_json))
            .await
    }

    /// [`Self::emit_event`] as `caller`, who needs `KvWrite` covering the topic's bytes.
    pub async fn emit_event_as(
        &self,
        caller: CallerContext,
        project_id: &str,
        scope_id: &str,
        topic: &str,
        event_key: String,
        payload_json: String,
    ) -> Result<CommitResult> {
        let mutation = emit(project_id, scope_id, topic, event_key, payload_json);
        self.commit_as(caller, mutation).await
    }

    /// Events of commits after `from_commit_seq_exclusive`, in (commit, topic, key) order, of
    /// `topic_filter` when given, at most `limit`.
    pub async fn read_event_stream(
        &self,
        topic_filter: Option<&str>,
        from_commit_seq_exclusive: u64,
        limit: usize,
        consistency: ConsistencyMode,
    ) -> Result<EventStreamPage> {
        self.read_events_by(
            None,
            topic_filter,
            from_commit_seq_exclusive,
            limit,
            consistency,
        )
    }

    /// [`Self::read_event_stream`] as `caller`, who needs `TableRead` of
    /// `_system.app.event_outbox`.
    pub async fn read_event_stream_as(
        &self,
        caller: &CallerContext,
        topic_filter: Option<&str>,
        from_commit_seq_exclusive: u64,
        limit: usize,
        consistency: ConsistencyMode,
    ) -> Result<EventStreamPage> {
        let caller = Some(caller);
        self.read_events_by(
            caller,
            topic_filter,
            from_commit_seq_exclusive,
            limit,
            consistency,
        )
    }

    fn read_events_by(
        &self,
        caller: Option<&CallerContext>,
        topic_filter: Option<&str>,
        from_commit_seq_exclusive: u64,
        limit: usize,
        consistency: ConsistencyMode,
    ) -> Result<EventStreamPage> {
        let need = system_table(events::OUTBOX_TABLE, false);
        self.check_caller(caller, need, "read_event_stream")?;
        let snapshot = self.snapshot_for(consistency)?;
        let events = events::read_after(&snapshot, topic_filter, from_commit_seq_exclusive, limit)?;
        Ok(EventStreamPage {
            next_commit_seq: events.last().map(|e| e.commit_seq),
            snapshot_seq: snapshot.seq(),
            events,
        })
    }
}
