//! `cargo xtask bench`: the numbers behind the engine's claims. Seeds `purchase_orders` (the
//! shape of `xtask/sql/bench_seed.sql`), then times, interleaved, COPY BINARY to /dev/null (the
//! practical floor), `etl-app run` (release build, zstd, exact decimals) on one stream and on two
//! connections (`--read-parallelism 2`), DuckDB's postgres scanner (the closest peer) and
//! `pg2parquet` when it is on PATH; then, on `shipments`, COPY, etl-app's ~1,000 Hive partitions
//! and DuckDB's `PARTITION_BY` into the same directories. Prints per tool the median wall time,
//! the ratio to its table's COPY, rows/s, client CPU per million rows, peak RSS and output bytes.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use etl_tests::postgres::{psql, psql_file};

use crate::demo::cargo;
use crate::measure::{Sample, Tool, measure, median};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Rows in purchase_orders.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: u64,
    /// Timed runs per tool (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Rows in the partitioned table (`shipments`, ~1,000 day partitions).
    #[arg(long, default_value_t = 5_000_000)]
    pub partitioned_rows: u64,
    /// Spread the partitioned table's rows over this many regions each day, for ~1,000 x N
    /// partitions (10: 10,000 partitions of ~500 rows of the default 5M); by default one
    /// region per day.
    #[arg(long, value_name = "N")]
    pub partition_regions: Option<u64>,
    /// Rows in the incremental table (`accounts`, cursor `updated_at` with an index); each
    /// incremental run follows an update of 0.1 % of them and a deletion of 0.01 %, and each
    /// round ends with a compaction of its batches. 0 skips the incremental case.
    #[arg(long, default_value_t = 5_000_000)]
    pub incremental_rows: u64,
    /// Also export shipments and purchase_orders to Garage through a proxy that holds each
    /// answer this many milliseconds (20: S3 in a region), beside a local directory.
    #[arg(long, value_name = "MS")]
    pub s3_latency_ms: Option<u64>,
    /// With --s3-latency-ms, also a table of one large file: `notes` with this many MB of
    /// random text (`xtask/sql/bench_notes.sql`), exported with --max-file-bytes 0.
    #[arg(long, value_name = "MB", requires = "s3_latency_ms")]
    pub s3_big_file_mb: Option<u64>,
    /// Extra arguments for `etl-app run`, e.g. "--compression snappy".
    #[arg(long, allow_hyphen_values = true)]
    pub etl_args: Option<String>,
    /// Instead of timing exports, time the build: the incremental release and debug build of
    /// etl-app after one model changed, with N extra models and with none, per model.
    #[arg(long, value_name = "N")]
    pub models: Option<usize>,
}

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    if let Some(models) = args.models {
        crate::bench_models::run(models)?;
        return Ok(ExitCode::SUCCESS);
    }
    cargo(&[
        "build",
        "--release",
        "--quiet",
        "-p",
        "etl-app",
        "--bin",
        "etl-demo",
    ])?;
    // etl-app over the demo's models, which include purchase_orders.
    let etl_app = etl_tests::target_dir().join("release").join("etl-demo");
    let server = etl_tests::server().map_err(anyhow::Error::msg)?;
    let url = bench_database(&server.url, args.rows)?;
    seed_table(
        &url,
        "shipments",
        "bench_shipments.sql",
        (args.partitioned_rows, args.partition_regions),
    )?;
    let out = etl_tests::target_dir().join("bench-out");

    let copy = copy_to_null(&url, "purchase_orders");
    let etl = |read_parallelism: &str, dir: &str| {
        let mut c = Command::new(&etl_app);
        c.args(["run", "--tables", "purchase_orders", "--output"])
            .arg(out.join(dir))
            .args(["--read-parallelism", read_parallelism])
            .env("DATABASE_URL", &url);
        if let Some(extra) = &args.etl_args {
            c.args(extra.split_whitespace());
        }
        c
    };
    // The demo's enrichment task on the same source: what a transform costs over the copy.
    let task = {
        let mut c = Command::new(&etl_app);
        c.args(["run", "--tables", "purchase_orders_usd", "--output"])
            .arg(out.join("etl-app-task"))
            .args(["--read-parallelism", "1"])
            .env("DATABASE_URL", &url);
        c
    };
    // The closest peer: DuckDB's postgres scanner (ctid ranges on one snapshot, zstd).
    let peers_python =
        etl_tests::python::venv(etl_tests::python::BENCH_PEERS).map_err(anyhow::Error::msg)?;
    let duckdb = |table: &str, output: PathBuf, keys: &[&str]| {
        let mut c = Command::new(&peers_python);
        c.arg(etl_tests::workspace_root().join("xtask/bench/duckdb_postgres_scanner.py"))
            .arg(&url)
            .arg(table)
            .arg(output)
            .args(keys);
        c
    };
    let mut tools = vec![
        Tool {
            name: "COPY binary -> /dev/null",
            command: copy,
            output: None,
        },
        Tool {
            name: "etl-app, one stream (--read-parallelism 1)",
            command: etl("1", "etl-app"),
            output: Some(out.join("etl-app")),
        },
        Tool {
            name: "etl-app task purchase_orders_usd",
            command: task,
            output: Some(out.join("etl-app-task")),
        },
        Tool {
            name: "etl-app --read-parallelism 2",
            command: etl("2", "etl-app-rp2"),
            output: Some(out.join("etl-app-rp2")),
        },
        Tool {
            name: "DuckDB 1.5.5 postgres scanner (zstd)",
            command: duckdb(
                "purchase_orders",
                out.join("duckdb").join("purchase_orders.parquet"),
                &[],
            ),
            output: Some(out.join("duckdb")),
        },
    ];
    if let Some(pg2parquet) = etl_tests::on_path("pg2parquet") {
        let mut c = Command::new(pg2parquet);
        c.args([
            "export",
            "--quiet",
            "--connection",
            &url,
            "--table",
            "purchase_orders",
        ])
        .args(["--compression", "zstd", "--numeric-handling", "decimal"])
        .arg("--output-file")
        .arg(out.join("pg2parquet").join("purchase_orders.parquet"))
        // It asks a terminal for a password when the URL has none; trust auth ignores it.
        .env("PGPASSWORD", "unused");
        tools.push(Tool {
            name: "pg2parquet (zstd, decimal)",
            command: c,
            output: Some(out.join("pg2parquet")),
        });
    } else {
        eprintln!(
            "pg2parquet is not on PATH: `cargo install pg2parquet --locked` to compare with it"
        );
    }
    // The partitioned layout on its own table, with its own floor: the last tools.
    let partitioned_at = tools.len();
    let copy_shipments = copy_to_null(&url, "shipments");
    let partitioned = {
        let mut c = Command::new(&etl_app);
        c.args(["run", "--tables", "shipments", "--output"])
            .arg(out.join("etl-app-partitioned"))
            .env("DATABASE_URL", &url);
        c
    };
    tools.push(Tool {
        name: "COPY binary shipments -> /dev/null",
        command: copy_shipments,
        output: None,
    });
    tools.push(Tool {
        name: if args.partition_regions.is_some() {
            "etl-app shipments, ~1,000 x regions partitions"
        } else {
            "etl-app shipments, ~1,000 partitions"
        },
        command: partitioned,
        output: Some(out.join("etl-app-partitioned")),
    });
    // The peer on the same layout: DuckDB's PARTITION_BY, which replaces its previous output
    // (OVERWRITE) as a scheduled export would. Not over ~10,000 partitions, where it takes a
    // minute or two a run (PERFORMANCE.md).
    if args.partition_regions.is_none() {
        tools.push(Tool {
            name: "DuckDB 1.5.5 PARTITION_BY (region, day)",
            command: duckdb(
                "shipments",
                out.join("duckdb-partitioned"),
                &["region", "shipped_at_day=CAST(shipped_at AS DATE)"],
            ),
            output: Some(out.join("duckdb-partitioned")),
        });
    }

    // Outputs start empty; after that, each run replaces its tool's previous output as a
    // scheduled export replaces yesterday's. Deleting it just before each run instead made
    // ext4 (without a journal, as here) skip the thousands of inodes freed seconds earlier on
    // every create: +0.4 s of system time on the 1,000-partition table, a cost of the bench.
    for dir in tools.iter().filter_map(|tool| tool.output.as_ref()) {
        let _ = std::fs::remove_dir_all(dir);
    }
    // One untimed pass warms the page cache and the binaries.
    for tool in &mut tools {
        measure(tool)?;
    }
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); tools.len()];
    for run in 1..=args.runs {
        for (i, tool) in tools.iter_mut().enumerate() {
            let sample = measure(tool)?;
            eprintln!(
                "run {run}/{}: {:<32} {:>7.2} s {:>7.1} MB",
                args.runs,
                tool.name,
                sample.seconds,
                sample.max_rss_kb as f64 / 1024.0
            );
            samples[i].push(sample);
        }
    }
    let incremental = if args.incremental_rows > 0 {
        Some(bench_incremental(
            &etl_app,
            &url,
            &out,
            args.incremental_rows,
            args.runs,
        )?)
    } else {
        None
    };
    let s3 = match args.s3_latency_ms {
        Some(latency) => Some(crate::bench_s3::run(
            &etl_app,
            &url,
            &out,
            (latency, args.s3_big_file_mb),
            args.runs,
        )?),
        None => None,
    };
    server.stop();

    let medians: Vec<Sample> = samples.iter().map(|s| median(s)).collect();
    let floor = medians[0].seconds;
    println!(
        "\npurchase_orders, {} rows, median of {} interleaved runs",
        args.rows, args.runs
    );
    println!(
        "| tool | wall (s) | x COPY | rows/s | client CPU s / 1M rows | peak RSS (MB) | output (MB) |\n|---|---|---|---|---|---|---|"
    );
    for (i, (tool, m)) in tools.iter().zip(&medians).enumerate() {
        // The partitioned tools have their own table, rows and floor.
        let (rows, floor) = if i >= partitioned_at {
            (args.partitioned_rows, medians[partitioned_at].seconds)
        } else {
            (args.rows, floor)
        };
        if i == partitioned_at {
            println!(
                "| shipments, {} rows, partitioned by region and day | | | | | | |",
                args.partitioned_rows
            );
        }
        println!(
            "| {} | {:.2} | {:.2} | {:.0} | {:.2} | {:.1} | {} |",
            tool.name,
            m.seconds,
            m.seconds / floor,
            rows as f64 / m.seconds,
            m.cpu_seconds * 1e6 / rows as f64,
            m.max_rss_kb as f64 / 1024.0,
            if tool.output.is_some() {
                format!("{:.1}", m.bytes as f64 / 1e6)
            } else {
                "-".into()
            }
        );
    }
    println!(
        "\nthe transform task takes {:.2}x the time of the plain export of its source",
        medians[2].seconds / medians[1].seconds
    );
    if let Some(incremental) = incremental {
        incremental.print();
    }
    if let Some(s3) = s3 {
        s3.print();
    }
    Ok(ExitCode::SUCCESS)
}

/// The incremental case's medians: the full export, a batch after 0.1 % of rows changed
/// (0.01 % deleted), and the compaction of a round's batches.
struct IncrementalBench {
    rows: u64,
    changed: u64,
    full: Sample,
    full_server_cpu: f64,
    /// After updating every 100th row: every heap page changed, all read again.
    scattered: Sample,
    scattered_server_cpu: f64,
    /// After updating a contiguous range of ids: 1 % of the pages.
    clustered: Sample,
    clustered_server_cpu: f64,
    /// `etl-app compact` of the round's two batches (no PostgreSQL).
    compact: Sample,
}

impl IncrementalBench {
    fn print(&self) {
        println!(
            "\naccounts, {} rows, cursor updated_at (indexed); a batch follows an update of {} rows (0.1 %) \
             and a deletion of a tenth as many (each batch reads every key to find them)",
            self.rows, self.changed
        );
        println!(
            "| run | wall (s) | x full | server CPU (s) | client CPU (s) | peak RSS (MB) |\n|---|---|---|---|---|---|"
        );
        for (name, sample, server) in [
            ("full export (--full)", &self.full, self.full_server_cpu),
            (
                "batch, 0.1 % scattered (every 1000th row)",
                &self.scattered,
                self.scattered_server_cpu,
            ),
            (
                "batch, 0.1 % clustered (a range of ids)",
                &self.clustered,
                self.clustered_server_cpu,
            ),
            (
                "compact (the full export and two batches)",
                &self.compact,
                0.0,
            ),
        ] {
            println!(
                "| {name} | {:.3} | {:.3} | {:.2} | {:.2} | {:.1} |",
                sample.seconds,
                sample.seconds / self.full.seconds,
                server,
                sample.cpu_seconds,
                sample.max_rss_kb as f64 / 1024.0
            );
        }
    }
}

/// Times `runs` full exports and `runs` batches of `accounts`, each batch after an update of
/// 1 % of the rows, with PostgreSQL's CPU over each run.
fn bench_incremental(
    etl_app: &Path,
    url: &str,
    out: &Path,
    rows: u64,
    runs: usize,
) -> Result<IncrementalBench> {
    seed_table(url, "accounts", "bench_accounts.sql", (rows, None))?;
    let dir = out.join("etl-app-incremental");
    let _ = std::fs::remove_dir_all(&dir);
    let run = |extra: &[&str]| {
        let mut c = Command::new(etl_app);
        c.args(["run", "--tables", "accounts", "--output"])
            .arg(&dir)
            .args(extra)
            .env("DATABASE_URL", url);
        Tool {
            name: "etl-app accounts",
            command: c,
            output: None,
        }
    };
    let changed = rows / 1000;
    // Runs `tool`, returning its sample and PostgreSQL's CPU meanwhile.
    let timed = |tool: &mut Tool| -> Result<(Sample, f64)> {
        let before = postgres_cpu_seconds();
        let sample = measure(tool)?;
        Ok((sample, postgres_cpu_seconds() - before))
    };
    let update = |condition: String| {
        psql(
            url,
            &format!("UPDATE accounts SET balance = balance + 1 WHERE {condition}"),
        )
        .map_err(anyhow::Error::msg)
    };
    let compact = || {
        let mut c = Command::new(etl_app);
        c.args(["compact", "--tables", "accounts", "--output"])
            .arg(&dir);
        measure(&mut Tool {
            name: "etl-app compact",
            command: c,
            output: None,
        })
    };
    let (mut full, mut scattered, mut clustered, mut compacted) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in 0..=runs as u64 {
        let full_run = timed(&mut run(&["--full"]))?;
        update(format!("id % 1000 = {}", n % 1000))?;
        psql(
            url,
            &format!(
                "DELETE FROM accounts WHERE id % 10000 = {}",
                5000 + n % 1000
            ),
        )
        .map_err(anyhow::Error::msg)?;
        let scattered_run = timed(&mut run(&[]))?;
        let first = 1 + (n % 1000) * changed;
        update(format!("id BETWEEN {first} AND {}", first + changed - 1))?;
        let clustered_run = timed(&mut run(&[]))?;
        let compact_run = compact()?;
        // The first round warms the cache and is not counted.
        if n > 0 {
            eprintln!(
                "run {n}/{runs}: accounts full {:.2} s, batches of {changed} rows: scattered {:.3} s, clustered {:.3} s",
                full_run.0.seconds, scattered_run.0.seconds, clustered_run.0.seconds
            );
            full.push(full_run);
            scattered.push(scattered_run);
            clustered.push(clustered_run);
            compacted.push(compact_run);
        }
    }
    let summary = |runs: &[(Sample, f64)]| {
        let samples: Vec<Sample> = runs.iter().map(|(s, _)| s.clone()).collect();
        let mut server: Vec<f64> = runs.iter().map(|(_, cpu)| *cpu).collect();
        server.sort_by(f64::total_cmp);
        (median(&samples), server[server.len() / 2])
    };
    let (full, full_server_cpu) = summary(&full);
    let (scattered, scattered_server_cpu) = summary(&scattered);
    let (clustered, clustered_server_cpu) = summary(&clustered);
    Ok(IncrementalBench {
        rows,
        changed,
        full,
        full_server_cpu,
        scattered,
        scattered_server_cpu,
        clustered,
        clustered_server_cpu,
        compact: median(&compacted),
    })
}

/// CPU seconds used so far by every `postgres` process, the exited ones included (their time
/// is in the postmaster's children's time once it has reaped them): the bench's server is the
/// only PostgreSQL it measures with.
fn postgres_cpu_seconds() -> f64 {
    // Linux's USER_HZ, which /proc reports in, is 100 on every architecture Rust targets.
    const TICKS_PER_SECOND: f64 = 100.0;
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        if !head.ends_with("(postgres") {
            continue;
        }
        // After the name: state, ppid, ... utime is the 14th field of the line, then stime,
        // cutime, cstime.
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += fields
            .get(11..15)
            .into_iter()
            .flatten()
            .filter_map(|f| f.parse::<u64>().ok())
            .sum::<u64>();
    }
    ticks as f64 / TICKS_PER_SECOND
}

/// The floor: the table's COPY BINARY, read by psql and thrown away.
fn copy_to_null(url: &str, table: &str) -> Command {
    let mut c = Command::new("psql");
    c.args(["-X", "-q", "-d", url, "-c"]).arg(format!(
        "\\copy (select * from {table}) to '/dev/null' with (format binary)"
    ));
    c
}

/// Seeds `table` with `rows` rows by `xtask/sql/<script>` unless it already holds exactly that
/// (the script leaves the row count in the table's comment).
fn seed_table(
    url: &str,
    table: &str,
    script: &str,
    (rows, regions): (u64, Option<u64>),
) -> Result<()> {
    let marker = psql(
        url,
        &format!("SELECT coalesce(obj_description(to_regclass('{table}'), 'pg_class'), '')"),
    )
    .map_err(anyhow::Error::msg)?;
    let wanted = match regions {
        Some(regions) => format!("etl-bench v1 rows={rows} regions={regions}"),
        None => format!("etl-bench v1 rows={rows}"),
    };
    if marker != wanted {
        eprintln!("seeding {table} with {rows} rows ...");
        let started = Instant::now();
        let seed = etl_tests::workspace_root().join("xtask/sql").join(script);
        let (rows, regions) = (rows.to_string(), regions.unwrap_or(0).to_string());
        psql_file(url, &seed, &[("rows", &rows), ("regions", &regions)])
            .map_err(anyhow::Error::msg)?;
        eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(())
}

/// Creates `etl_bench` with `rows` rows unless it already holds exactly that.
fn bench_database(server_url: &str, rows: u64) -> Result<String> {
    let exists = psql(
        server_url,
        "SELECT count(*) FROM pg_database WHERE datname = 'etl_bench'",
    )
    .map_err(anyhow::Error::msg)?;
    if exists != "1" {
        psql(server_url, "CREATE DATABASE etl_bench").map_err(anyhow::Error::msg)?;
    }
    let url = etl_tests::with_database(server_url, "etl_bench");
    let marker = psql(
        &url,
        "SELECT coalesce(obj_description(to_regclass('purchase_orders'), 'pg_class'), '')",
    )
    .map_err(anyhow::Error::msg)?;
    if marker != format!("etl-bench v2 rows={rows}") {
        eprintln!("seeding purchase_orders with {rows} rows ...");
        let started = Instant::now();
        let seed = etl_tests::workspace_root().join("xtask/sql/bench_seed.sql");
        psql_file(&url, &seed, &[("rows", &rows.to_string())]).map_err(anyhow::Error::msg)?;
        eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    }
    Ok(url)
}
