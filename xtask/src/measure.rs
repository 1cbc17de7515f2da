//! How the bench times a tool: one run under GNU time (wall time is ours, to the microsecond;
//! peak RSS and CPU are the kernel's), its output's bytes, and the median of interleaved runs.
//! Shared by `bench` and `bench_s3`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Result, bail};

/// A command the bench times.
pub(crate) struct Tool {
    pub(crate) name: &'static str,
    pub(crate) command: Command,
    /// Where its output lands, to measure bytes (cleared once, before the first run).
    pub(crate) output: Option<PathBuf>,
}

#[derive(Default, Clone)]
pub(crate) struct Sample {
    pub(crate) seconds: f64,
    /// User + system CPU seconds of the client process (PostgreSQL's own CPU is not in it).
    pub(crate) cpu_seconds: f64,
    pub(crate) max_rss_kb: u64,
    pub(crate) bytes: u64,
}

pub(crate) fn measure(tool: &mut Tool) -> Result<Sample> {
    if let Some(dir) = &tool.output {
        std::fs::create_dir_all(dir)?;
    }
    // GNU time reports the child's peak RSS and CPU; wall time is ours, to the microsecond.
    let started = Instant::now();
    let timed = etl_tests::run_timed(&tool.command).map_err(anyhow::Error::msg)?;
    let seconds = started.elapsed().as_secs_f64();
    if !timed.output.status.success() {
        bail!(
            "{} failed: {}",
            tool.name,
            String::from_utf8_lossy(&timed.output.stderr)
        );
    }
    Ok(Sample {
        seconds,
        cpu_seconds: timed.cpu_seconds,
        max_rss_kb: timed.peak_rss_kib,
        bytes: tool.output.as_deref().map(dir_bytes).unwrap_or(0),
    })
}

/// The bytes of the Parquet files readers of `dir` see: not those of the versions kept in
/// hidden directories (`.etl-versions`).
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            total += dir_bytes(&path);
        } else if path.extension().is_some_and(|e| e == "parquet") {
            total += entry.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    total
}

pub(crate) fn median(samples: &[Sample]) -> Sample {
    let mut by_time = samples.to_vec();
    by_time.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    let mut median = by_time[by_time.len() / 2].clone();
    let mut cpu: Vec<f64> = samples.iter().map(|s| s.cpu_seconds).collect();
    cpu.sort_by(f64::total_cmp);
    median.cpu_seconds = cpu[cpu.len() / 2];
    let mut rss: Vec<u64> = samples.iter().map(|s| s.max_rss_kb).collect();
    rss.sort_unstable();
    median.max_rss_kb = rss[rss.len() / 2];
    median
}
