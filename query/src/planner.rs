//! The planner lives in the access layer (`aedb_access::planner`), so the write path plans
//! `DeleteWhere`/`UpdateWhere` without the query layer; this is its public path
//! `aedb::query::planner`.

pub use aedb_access::planner::*;
