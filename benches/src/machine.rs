//! What the numbers were measured on: CPU, kernel, memory, the data directory's file system and
//! device, the aedb commit, and the exact command line.

use std::fmt::Write as _;
use std::path::Path;

pub fn describe(data_dir: &Path) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "- command: `{}`", command_line());
    let _ = writeln!(
        out,
        "- CPU: {} ({} logical cores)",
        cpu_model(),
        cpu_count()
    );
    let _ = writeln!(out, "- memory: {}", mem_total());
    let _ = writeln!(out, "- kernel: {}", kernel());
    let _ = writeln!(
        out,
        "- data dir: `{}` on {}",
        data_dir.display(),
        file_system(data_dir)
    );
    let _ = writeln!(out, "- aedb source at build time: {}", env!("AEDB_SOURCE"));
    out
}

fn command_line() -> String {
    std::env::args()
        .map(|arg| {
            if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'') {
                format!("'{}'", arg.replace('\'', r"'\''"))
            } else {
                arg
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn cpu_model() -> String {
    read("/proc/cpuinfo")
        .lines()
        .find_map(|line| {
            line.strip_prefix("model name")
                .and_then(|rest| rest.split_once(':'))
        })
        .map(|(_, model)| model.trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn cpu_count() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

fn mem_total() -> String {
    read("/proc/meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kib| format!("{:.1} GiB", kib as f64 / (1 << 20) as f64))
        .unwrap_or_else(|| "unknown".into())
}

fn kernel() -> String {
    let os = read("/proc/sys/kernel/ostype");
    let release = read("/proc/sys/kernel/osrelease");
    format!("{} {}", os.trim(), release.trim())
}

/// The mount holding `dir` in /proc/mounts (longest matching mount point): type and device.
fn file_system(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let mounts = read("/proc/mounts");
    let best = mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            dir.starts_with(point)
                .then_some((point.len(), device, kind))
        })
        .max_by_key(|(len, _, _)| *len);
    match best {
        Some((_, device, kind)) => format!("{kind} ({device})"),
        None => "unknown file system".into(),
    }
}
