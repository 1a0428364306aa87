//! The owners of each kind of stored data. Each module is the one place that opens its trees,
//! knows its key and value encodings, and reads them (over `ReadTrees`, so a snapshot and a
//! commit's transaction read alike) and writes them (in a commit's `LoggedTxn`). Everything
//! else — mutation application, the API, the tools — calls the owner.
//!
//! Tree names come from one registry (`aedb_catalog::namespace`), so no two kinds collide.
//!
//! | owner | trees | key | value |
//! |---|---|---|---|
//! | `catalog` | `sys:catalog` | `P\0`/`S\0`/`T\0`/`N\0` prefixed ids | catalog entries |
//! | `kv` | `kv:<project>:<scope>` | the user's key | `version ‖ created_at ‖ bytes` |
//! | `counters` | the KV tree of the scope | `__aedb_counter_shard__ ‖ len ‖ key ‖ shard` | u64 BE in a KV entry |
//! | `idempotency` | `sys:idempotency`, `sys:idempotency_by_seq` | caller ‖ key; seq ‖ record key | record; written-at |
//! | `rows` | `t:<table id>`, `i:<table id>:<index>` | primary key; index entry | row; empty |
//! | `events` | the table `_system.app.event_outbox` (rows as `rows`) | (commit seq, topic, event key) | the event row |
//! | `grants` | `sys:grants` | caller ‖ 0 ‖ permission (postcard) | delegable, seq, grantor |
//! | `lifecycle` | the table `_system.app.lifecycle_outbox` (rows as `rows`) | commit seq | the commit's lifecycle events, JSON |
//! | `processors` | `_system.app.reactive_processor_{checkpoints,registry,dead_letters}` (rows as `rows`) | processor name (and commit, key) | checkpoint; options; dead letter |
//! | `read_policies` | `sys:read_policies` | project ‖ 0 ‖ scope ‖ 0 ‖ table | the predicate, JSON |
//! | `audit` | the tables `_system.app.{authz,assertion}_audit` (rows as `rows`) | commit seq, ordinal | one change of grants, policies or ownership; one failed assertion |
//! | `accumulators` | `sys:accumulators`, `acc:<project>:<scope>:<name>` | project ‖ scope ‖ name; tagged state, delta, dedupe, exposure keys | definition; see the module |

pub mod accumulators;
pub mod audit;
pub mod catalog;
pub mod counters;
pub mod events;
pub mod grants;
pub mod idempotency;
pub mod kv;
pub mod lifecycle;
pub mod processors;
pub mod read_policies;
pub mod rows;
pub mod system;
