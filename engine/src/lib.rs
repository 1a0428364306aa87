pub use aedb_pager as storage;
