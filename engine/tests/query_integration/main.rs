//! The API of the README, area by area, each checked again after a reopen.

mod kv_and_commits;
mod queries;
mod schema_and_rows;
mod support;
