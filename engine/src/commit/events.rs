//! `EmitEvent` inside a commit: checks the event, then stores it in the outbox
//! (`stored::events`) under the commit's sequence.

use super::apply::{rows, Applied, Limits};
use super::validation::Mutation;
use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};
use crate::stored::catalog::{check_id, require_scope};
use crate::stored::events::{self, EventOutboxRecord};

/// Longest event key: with the topic and a processor's name it forms the key of a dead
/// letter, which must always fit in a B+tree key.
const MAX_EVENT_KEY_BYTES: usize = 512;

pub fn apply(txn: &mut LoggedTxn, mutation: &Mutation, limits: &Limits) -> Result<Applied> {
    let Mutation::EmitEvent {
        project_id,
        scope_id,
        topic,
        event_key,
        payload_json,
    } = mutation
    else {
        return Err(AedbError::Validation("not an event mutation".into()));
    };
    check_id("topic", topic)?;
    if event_key.trim().is_empty() {
        return Err(AedbError::Validation("event_key must not be blank".into()));
    }
    if event_key.len() > MAX_EVENT_KEY_BYTES {
        return Err(AedbError::Validation(format!(
            "event_key of {} bytes exceeds {MAX_EVENT_KEY_BYTES}",
            event_key.len()
        )));
    }
    if payload_json.trim().is_empty() {
        return Err(AedbError::Validation(
            "payload_json must not be blank".into(),
        ));
    }
    if payload_json.len() > limits.max_event_payload_bytes {
        return Err(AedbError::Validation(format!(
            "payload_json of {} bytes exceeds max_event_payload_bytes ({})",
            payload_json.len(),
            limits.max_event_payload_bytes
        )));
    }
    if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(payload_json) {
        return Err(AedbError::Validation(format!(
            "payload_json must be valid JSON: {err}"
        )));
    }
    require_scope(txn, project_id, scope_id)?;
    let outbox = events::ensure_outbox(txn, limits.now_micros)?;
    let record = EventOutboxRecord {
        commit_seq: txn.seq(),
        ts_micros: limits.now_micros,
        project_id: project_id.clone(),
        scope_id: scope_id.clone(),
        topic: topic.clone(),
        event_key: event_key.clone(),
        payload_json: payload_json.clone(),
    };
    events::append(txn, &outbox, &record)?;
    Ok(rows(1))
}
