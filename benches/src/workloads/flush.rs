//! What the disk gives a durable commit, measured in the same run and directory as the engines:
//! the latency of one 4 KiB `pwrite` + `fdatasync`, and the process CPU time (for engines with
//! background threads).

use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};

const BLOCK: usize = 4096;

/// Where the 4 KiB writes land.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushTarget {
    /// Over blocks written and synced before (a pure data flush: the lower bound).
    Overwrite,
    /// Into space reserved with `fallocate` and never written (unwritten extents: each flush
    /// also commits the extent conversion to the file system journal), as a preallocated WAL
    /// segment is written the first time.
    Fallocated,
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub p50_us: f64,
    pub p99_us: f64,
}

/// `samples` sequential 4 KiB `pwrite` + `fdatasync` on a new file in `dir` (removed after).
pub fn measure(dir: &Path, samples: usize, target: FlushTarget) -> Result<Latency> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let path = dir.join(format!("flush-probe-{target:?}"));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    let len = (samples * BLOCK) as u64;
    match target {
        FlushTarget::Overwrite => {
            let zeros = vec![0u8; 1 << 20];
            let mut offset = 0;
            while offset < len {
                let n = zeros.len().min((len - offset) as usize);
                file.write_all_at(&zeros[..n], offset)?;
                offset += n as u64;
            }
        }
        FlushTarget::Fallocated => {
            // SAFETY: a plain syscall on a descriptor this function owns.
            let rc = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len as libc::off_t) };
            anyhow::ensure!(rc == 0, "fallocate: {}", std::io::Error::last_os_error());
        }
    }
    file.sync_all()?;
    let block = [0x5au8; BLOCK];
    let mut micros = Vec::with_capacity(samples);
    for i in 0..samples {
        let start = Instant::now();
        file.write_all_at(&block, (i * BLOCK) as u64)?;
        file.sync_data()?;
        micros.push(start.elapsed().as_secs_f64() * 1e6);
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(latency(&mut micros))
}

/// p50 and p99 of samples in microseconds (sorted in place).
pub fn latency(micros: &mut [f64]) -> Latency {
    Latency {
        p50_us: percentile(micros, 0.50),
        p99_us: percentile(micros, 0.99),
    }
}

/// The nearest-rank percentile `q` (0..=1) of `samples` (sorted in place).
pub fn percentile(samples: &mut [f64], q: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
    samples[rank - 1]
}

/// User plus system CPU seconds of this process so far (every thread, background ones too).
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut samples, 0.5), 50.0);
        assert_eq!(percentile(&mut samples, 0.99), 99.0);
        assert_eq!(percentile(&mut samples, 1.0), 100.0);
        assert_eq!(percentile(&mut [7.0], 0.99), 7.0);
    }
}
