//! Reactive processors' durable state inside a commit: checkpoint acks, the registry and dead
//! letters (stored by `stored::processors`), with their rules.

use crate::durable::LoggedTxn;
use crate::error::{AedbError, Result};
use crate::stored::processors::{self as stored, DeadLetter, Registration};

/// Longest processor name: it is part of the keys of checkpoints and dead letters.
const MAX_NAME_BYTES: usize = 128;

pub fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(AedbError::Validation(
            "reactive processor name must not be blank".into(),
        ));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(AedbError::Validation(format!(
            "reactive processor name of {} bytes exceeds {MAX_NAME_BYTES}",
            name.len()
        )));
    }
    Ok(())
}

/// Record that processor `name` has processed every event up to commit `seq`; refuses to go
/// back (an equal checkpoint is accepted).
pub fn ack(txn: &mut LoggedTxn, name: &str, seq: u64, now_micros: u64) -> Result<()> {
    check_name(name)?;
    // A checkpoint past the head would skip events not yet written.
    let head = txn.seq().saturating_sub(1);
    if seq > head {
        return Err(AedbError::Validation(format!(
            "checkpoint_seq {seq} is beyond the head {head}"
        )));
    }
    if let Some(current) = stored::checkpoint(txn, name)? {
        if seq < current {
            return Err(AedbError::Validation(format!(
                "checkpoint_seq {seq} regresses current checkpoint {current}"
            )));
        }
    }
    stored::put_checkpoint(txn, name, seq, now_micros)
}

/// Register processor `name` (enabled or not) with its options; a first registration also
/// gives it a checkpoint of 0. An existing checkpoint is kept: a restart continues from it.
pub fn register(txn: &mut LoggedTxn, registration: &Registration) -> Result<()> {
    check_name(&registration.processor_name)?;
    if stored::checkpoint(txn, &registration.processor_name)?.is_none() {
        stored::put_checkpoint(
            txn,
            &registration.processor_name,
            0,
            registration.updated_at_micros,
        )?;
    }
    stored::put_registration(txn, registration)
}

/// Set a registered processor's enabled flag; false when it is not registered.
pub fn set_enabled(
    txn: &mut LoggedTxn,
    name: &str,
    enabled: bool,
    now_micros: u64,
) -> Result<bool> {
    let Some(mut registration) = stored::registration(txn, name)? else {
        return Ok(false);
    };
    registration.enabled = enabled;
    registration.updated_at_micros = now_micros;
    stored::put_registration(txn, &registration)?;
    Ok(true)
}

/// Store the events a processor gave up on. The checkpoint is not moved here: a batch's
/// letters may need several commits, and only once all are stored does the worker move its
/// position past them (a crash between parts redelivers, and the letters are stored again
/// under the same keys).
pub fn dead_letter(txn: &mut LoggedTxn, letters: &[DeadLetter]) -> Result<()> {
    for letter in letters {
        stored::put_dead_letter(txn, letter)?;
    }
    Ok(())
}
