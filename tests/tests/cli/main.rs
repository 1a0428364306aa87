//! The `aedb` command and `aedb-explorer`, end to end on databases built here: every README
//! command with its output asserted; read-only proven by file hashes (also beside a live
//! writer); damaged inputs (a flipped byte in a leaf page, a truncated WAL segment, a zeroed
//! meta page) reported precisely with a non-zero exit and no panic; dump → restore → parity.
//!
//! Both programs run in-process through their `run` functions (the binaries are thin wrappers
//! around them), with the argument vectors exactly as typed on the command line.

mod commands;
mod damage;
mod read_only;
mod support;
