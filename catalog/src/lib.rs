//! aedb's catalog: column types and values, schemas, DDL, namespaces, and the encodings of keys,
//! rows and catalog entries. It knows nothing of storage; the engine stores what it encodes.

pub mod ddl;
pub mod eval;
pub mod expr;
pub mod index;
pub mod keys;
pub mod namespace;
pub mod permission;
pub mod rows;
pub mod schema;
pub mod types;

pub use ddl::{DdlOperation, DdlResult, ResourceType, TableAlteration};
