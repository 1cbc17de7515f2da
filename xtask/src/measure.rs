//! How the bench times a tool: one run under GNU time (wall time is ours, to the microsecond;
//! peak RSS and CPU are the kernel's), its output's bytes, and the median of interleaved runs.
//! Shared by `bench` and `bench_s3`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

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
    let program = tool.command.get_program().to_owned();
    let args: Vec<_> = tool.command.get_args().map(|a| a.to_owned()).collect();
    let envs: Vec<_> = tool
        .command
        .get_envs()
        .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned())))
        .collect();
    // GNU time reports the child's peak RSS; wall time is ours, to the microsecond.
    if !Path::new("/usr/bin/time").exists() && !etl_tests::apt_install("time") {
        bail!("GNU time is missing and `apt-get install time` failed");
    }
    let mut command = Command::new("/usr/bin/time");
    command
        .args(["-f", "%M %U %S"])
        .arg(&program)
        .args(&args)
        .envs(envs);
    let started = Instant::now();
    let output = command
        .output()
        .context("cannot run /usr/bin/time (Debian: apt-get install time)")?;
    let seconds = started.elapsed().as_secs_f64();
    if !output.status.success() {
        bail!(
            "{} failed: {}",
            tool.name,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last: Vec<&str> = stderr
        .lines()
        .last()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let field = |i: usize| last.get(i).and_then(|v| v.parse::<f64>().ok());
    let max_rss_kb = field(0).map_or(0, |kb| kb as u64);
    let cpu_seconds = field(1).unwrap_or(0.0) + field(2).unwrap_or(0.0);
    let bytes = tool.output.as_deref().map(dir_bytes).unwrap_or(0);
    Ok(Sample {
        seconds,
        cpu_seconds,
        max_rss_kb,
        bytes,
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
