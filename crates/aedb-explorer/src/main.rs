//! `aedb-explorer`: see `aedb-explorer --help` and docs/CLI.md.

use std::io::IsTerminal;

fn main() {
    let progress = std::io::stdout().is_terminal();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let status = aedb_explorer::run(std::env::args_os(), &mut out, &mut err, progress);
    drop(out);
    drop(err);
    std::process::exit(status);
}
