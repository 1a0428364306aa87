//! The command line (clap): every command with its flags and an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::util::{parse_key32, CliError, Res};

#[derive(Debug, Parser)]
#[command(
    name = "aedb",
    version,
    about = "Inspect, check, dump and restore aedb databases",
    long_about = "Inspect, check, dump and restore aedb databases.\n\n\
        Every inspection command opens the database read-only: it changes no byte on disk, \
        takes no lock, and works beside a live process.\n\
        Exit status: 0 ok; 1 damage, violations or a mismatch found (and reported), or an \
        error; 2 bad arguments.",
    after_help = "Examples:\n  \
        aedb check invariants --data-dir ./db\n  \
        aedb dump export --data-dir ./db --out db.aedbdump\n  \
        aedb pages stat --data-dir ./db --json"
)]
pub struct Cli {
    /// Print one JSON document instead of the human form
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Logical dumps: export, compare (parity) and restore
    #[command(subcommand)]
    Dump(DumpCommand),
    /// Consistency checks
    #[command(subcommand)]
    Check(CheckCommand),
    /// Page-level view of the data file (as of its newest checkpoint)
    #[command(subcommand)]
    Pages(PagesCommand),
    /// The B+trees of the data file (as of its newest checkpoint)
    #[command(subcommand)]
    Tree(TreeCommand),
    /// The write-ahead log
    #[command(subcommand)]
    Wal(WalCommand),
    /// Both meta pages decoded, and which one is current and why
    #[command(after_help = "Example:\n  aedb meta --data-dir ./db")]
    Meta(DbArgs),
}

#[derive(Debug, Subcommand)]
pub enum DumpCommand {
    /// Write a dump of every project, scope, table (schema and rows) and KV space
    #[command(after_help = "Example:\n  aedb dump export --data-dir ./db --out db.aedbdump")]
    Export {
        #[command(flatten)]
        db: DbArgs,
        /// The dump file to write (replaced atomically)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Compare a dump with a database: `ok` or `mismatch` (exit 1) and what differs
    #[command(after_help = "Example:\n  aedb dump parity --dump db.aedbdump --data-dir ./db")]
    Parity {
        /// The dump file
        #[arg(long, value_name = "FILE")]
        dump: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
    /// Load a dump into an empty (or new) directory, then check parity
    #[command(
        after_help = "Example:\n  aedb dump restore --dump db.aedbdump --data-dir ./restored"
    )]
    Restore {
        /// The dump file
        #[arg(long, value_name = "FILE")]
        dump: PathBuf,
        #[command(flatten)]
        db: DbArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Storage invariants (every page, every tree) and catalog checks (indexes equal a
    /// rebuild, every table has its trees, counts agree); exit 1 on violations
    #[command(after_help = "Example:\n  aedb check invariants --data-dir ./db")]
    Invariants(DbArgs),
}

#[derive(Debug, Subcommand)]
pub enum PagesCommand {
    /// Page size and count, pages by type, fill per tree, free list, file size vs live data
    #[command(after_help = "Example:\n  aedb pages stat --data-dir ./db")]
    Stat(DbArgs),
    /// One page decoded: header field by field, cells and keys, checksum verdict
    #[command(after_help = "Example:\n  aedb pages dump 7 --data-dir ./db --hex")]
    Dump {
        /// The page number
        page: u64,
        #[command(flatten)]
        db: DbArgs,
        /// Also print the raw bytes
        #[arg(long)]
        hex: bool,
    },
    /// One cell per page, by type and fill: text for the terminal, or an SVG
    #[command(after_help = "Example:\n  aedb pages map --data-dir ./db --svg map.svg")]
    Map {
        #[command(flatten)]
        db: DbArgs,
        /// Write the map as an SVG image to FILE
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Pages per line (text) or per row (SVG)
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
        width: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum TreeCommand {
    /// Every tree: root, height, pages, entries, fill
    #[command(after_help = "Example:\n  aedb tree list --data-dir ./db")]
    List(DbArgs),
    /// One tree level by level (`(tree of trees)` for the tree of trees)
    #[command(after_help = "Example:\n  aedb tree dump t:1 --data-dir ./db --keys")]
    Dump {
        /// The tree's name (see `aedb tree list`)
        name: String,
        #[command(flatten)]
        db: DbArgs,
        /// List every key of every node (else the first and last of each)
        #[arg(long)]
        keys: bool,
        /// Read at most this many pages
        #[arg(long, default_value_t = 10_000)]
        max_pages: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum WalCommand {
    /// Segments and frames (LSN, sequence, size, checksum, effects); where the valid log ends
    #[command(after_help = "Example:\n  aedb wal dump --data-dir ./db --from-lsn 40")]
    Dump {
        #[command(flatten)]
        db: DbArgs,
        /// Show frames from this LSN on
        #[arg(long, default_value_t = 0)]
        from_lsn: u64,
        /// Show frames up to this LSN
        #[arg(long)]
        to_lsn: Option<u64>,
        /// Only one line per frame (no effects)
        #[arg(long)]
        no_effects: bool,
        /// Effects listed per frame at most
        #[arg(long, default_value_t = 20)]
        max_ops: usize,
    },
}

/// Where the database is and how to read it.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// The database directory (holds data.aedb and wal/)
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// Permissive recovery without the hash chain: read the valid prefix of a damaged log
    #[arg(long)]
    pub permissive: bool,
    /// The WAL's HMAC key (64 hex digits), when the database was written with one
    #[arg(long, value_name = "HEX")]
    pub hmac_key_hex: Option<String>,
}

impl DbArgs {
    pub fn config(&self) -> Res<aedb::config::AedbConfig> {
        let mut config = aedb::config::AedbConfig::default();
        if self.permissive {
            config.recovery_mode = aedb::config::RecoveryMode::Permissive;
            config.hash_chain_required = false;
        }
        if let Some(text) = &self.hmac_key_hex {
            let key = parse_key32(text).map_err(|e| {
                CliError::new(format!("--hmac-key-hex: {e}"))
                    .hint("give the 32-byte key as 64 hexadecimal digits")
            })?;
            config.hmac_key = Some(key);
        }
        // An inspection tool needs few frames in memory.
        config.buffer_pool_bytes = 64 << 20;
        Ok(config)
    }

    pub fn hmac_key(&self) -> Res<Option<[u8; 32]>> {
        Ok(self.config()?.hmac_key)
    }
}
