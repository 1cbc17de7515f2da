//! `cargo xtask bench --s3-latency-ms N`: the same exports to a local directory and to Garage
//! through a proxy that holds each answer N ms (a stand-in for S3 in a region, where every
//! request waits tens of milliseconds), with the run's default upload concurrency and with one
//! request at a time (`--s3-concurrency 1`, how uploads went before they were concurrent).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use etl_tests::faulty_proxy::{Fault, FaultyProxy};
use etl_tests::garage::Garage;

use crate::measure::{Sample, Tool, measure, median};

/// One table's case: its local export, and its S3 exports.
pub(crate) struct S3Case {
    /// The table, and how its files are cut when that is the point of the case.
    label: &'static str,
    local: Sample,
    /// Straight to Garage, no latency added: what the store itself costs.
    direct: Sample,
    /// The default concurrency (64).
    concurrent: Sample,
    /// 16 requests at once.
    narrow: Sample,
    serial: Sample,
}

pub(crate) struct S3Bench {
    latency_ms: u64,
    cases: Vec<S3Case>,
}

/// Exports `shipments` (many partitions) and `purchase_orders` (one file), and with
/// `big_file_mb` `notes` (one file of about that size), `runs` times each way, interleaved.
pub(crate) fn run(
    etl_app: &Path,
    url: &str,
    out: &Path,
    (latency_ms, big_file_mb): (u64, Option<u64>),
    runs: usize,
) -> Result<S3Bench> {
    let mut tables: Vec<(&'static str, &'static str, &'static [&'static str])> = vec![
        ("shipments", "shipments", &[]),
        ("purchase_orders", "purchase_orders", &[]),
    ];
    if let Some(mb) = big_file_mb {
        seed_notes(url, mb)?;
        // One file, which can go up only once written; and files of the default 512 MB, each
        // of which goes up while the next is written.
        tables.push(("notes, one file", "notes", &["--max-file-bytes", "0"]));
        tables.push(("notes, 512 MB files", "notes", &[]));
    }
    let garage = Garage::start().map_err(anyhow::Error::msg)?;
    let proxy = FaultyProxy::start(
        garage.s3_port,
        Fault::Latency(Duration::from_millis(latency_ms)),
    )
    .map_err(anyhow::Error::msg)?;
    let env = garage.env_for(&format!("http://127.0.0.1:{}", proxy.port));
    let direct_env = garage.env_for(&garage.endpoint());
    let staging = out.join("s3-staging");
    let s3 = |table: &str| format!("s3://{}/bench-{table}", garage.bucket);
    let mut cases = Vec::new();
    for (label, table, table_args) in tables {
        // The table's own arguments, then the case's.
        let command_to = |env: &[(String, String)], output: String, extra: &[&str]| {
            let mut c = Command::new(etl_app);
            c.args(["run", "--tables", table, "--output", &output])
                .args(table_args)
                .args(extra)
                .env("DATABASE_URL", url)
                .env("ETL_STAGING_DIR", &staging)
                .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            c
        };
        let command = |output: String, extra: &[&str]| command_to(&env, output, extra);
        let local_dir = out.join(format!("s3-local-{table}"));
        let mut tools = [
            Tool {
                name: "local directory",
                command: command(local_dir.display().to_string(), &[]),
                output: Some(local_dir),
            },
            Tool {
                name: "Garage, no latency, default concurrency",
                command: command_to(&direct_env, s3(table), &["--keep-versions", "1"]),
                output: None,
            },
            Tool {
                name: "Garage + latency, 64 at once (default)",
                command: command(s3(table), &["--keep-versions", "1"]),
                output: None,
            },
            Tool {
                name: "Garage + latency, --s3-concurrency 16",
                command: command(
                    s3(table),
                    &["--keep-versions", "1", "--s3-concurrency", "16"],
                ),
                output: None,
            },
            Tool {
                name: "Garage + latency, --s3-concurrency 1",
                command: command(
                    s3(table),
                    &["--keep-versions", "1", "--s3-concurrency", "1"],
                ),
                output: None,
            },
        ];
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); tools.len()];
        for run in 0..=runs {
            for (i, tool) in tools.iter_mut().enumerate() {
                let sample = measure(tool)?;
                eprintln!(
                    "s3 run {run}/{runs} {label}: {:<40} {:>7.2} s",
                    tool.name, sample.seconds
                );
                // The first pass warms the page cache and the binaries.
                if run > 0 {
                    samples[i].push(sample);
                }
            }
        }
        cases.push(S3Case {
            label,
            local: median(&samples[0]),
            direct: median(&samples[1]),
            concurrent: median(&samples[2]),
            narrow: median(&samples[3]),
            serial: median(&samples[4]),
        });
    }
    Ok(S3Bench { latency_ms, cases })
}

/// `notes` with `mb` MB of random text, unless the bench database has it already.
fn seed_notes(url: &str, mb: u64) -> Result<()> {
    let marker = format!("etl-bench notes mb={mb}");
    let found = etl_tests::postgres::psql(
        url,
        "SELECT coalesce(obj_description(to_regclass('notes'), 'pg_class'), '')",
    )
    .map_err(anyhow::Error::msg)?;
    if found == marker {
        return Ok(());
    }
    eprintln!("seeding notes with {mb} MB of random text ...");
    let started = std::time::Instant::now();
    let seed = etl_tests::workspace_root().join("xtask/sql/bench_notes.sql");
    etl_tests::postgres::psql_file(url, &seed, &[("mb", &mb.to_string()), ("marker", &marker)])
        .map_err(anyhow::Error::msg)?;
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

impl S3Bench {
    pub(crate) fn print(&self) {
        println!(
            "\nS3 (Garage) through a proxy holding each answer {} ms, medians\n\
             | table | local (s) | Garage, no latency (s) | + latency, 64 at once (s) | x local | + latency, 16 at once (s) | x local | + latency, one at a time (s) | x local | peak RSS, 64 (MB) |\n\
             |---|---|---|---|---|---|---|---|---|---|",
            self.latency_ms
        );
        for case in &self.cases {
            let local = case.local.seconds;
            println!(
                "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |",
                case.label,
                local,
                case.direct.seconds,
                case.concurrent.seconds,
                case.concurrent.seconds / local,
                case.narrow.seconds,
                case.narrow.seconds / local,
                case.serial.seconds,
                case.serial.seconds / local,
                case.concurrent.max_rss_kb as f64 / 1024.0
            );
        }
    }
}
