//! Tampering with a database opened with `AedbConfig::production` (an HMAC on every log frame,
//! the hash chain, `RecoveryMode::Strict`, `DurabilityMode::Full`).
//!
//! The log: a frame altered, reordered or removed before the valid tail, or a whole segment
//! removed before the newest, fails the open with corruption naming the segment file and the
//! byte offset. A torn tail (the last frame cut short, as a crash in its write leaves it) is no
//! tampering: the database opens with every complete frame and the recovery report says where
//! the log ended. The data file: a damaged page gives a typed error naming the page, on open or
//! on the read that meets it, never a panic and never wrong rows.
//!
//! Beyond what these files can show, and asserted by no case: frames cut off at the end on a
//! frame boundary (or the newest segment deleted) look like a log that ended there, and a page
//! whose CRC a forger redid says what the forger wrote (pages carry no keyed MAC).
//!
//! One database is built per run: commits over several 64 KiB segments, left as a crash leaves
//! it (no checkpoint covers them, so recovery verifies and redoes every frame). Each case
//! tampers with a copy; a refused log is refused by `open_production` too. Frames are found with the log's inspection API (`aedb wal`'s) and pages
//! with the checker's walk (`aedb pages`'), not at fixed offsets.

mod data_file;
mod log;
mod support;
