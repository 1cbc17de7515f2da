//! The command line, defined and documented in one place: `etl-app --help` is the manual.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const AFTER_HELP: &str = "\
Examples:
  # Export every registered table to ./etl-out (one directory per table):
  DATABASE_URL=postgres://etl@db.internal/prod etl-app run

  # Two tables, to another directory:
  etl-app run --tables currencies,purchase_orders --output /data/exports

  # To S3 (credentials from the AWS default chain), encrypted with KMS:
  etl-app run --output s3://analytics-raw/procurement --sse aws:kms

  # What can be exported:
  etl-app list

  # Has the database drifted from the models? (run also refuses a table that has)
  etl-app check

  # Where incremental tables stand (watermark, batches):
  etl-app state --output /data/exports

  # One run split into 4 shards on 4 machines sharing /data/exports (a Kubernetes Indexed
  # Job sets JOB_COMPLETION_INDEX, which is --shard):
  etl-app coordinate --shards 4 --run-name nightly-42 --output /data/exports
  etl-app shard --run-name nightly-42 --shard 0 --output /data/exports   # ... up to --shard 3

Try it on a throwaway database with `cargo xtask demo`. Models are generated from a live
table with `cargo xtask gen --table NAME`.

Exit status: 0 when every table was exported, 1 when any failed (the others are still
published, each whole), 2 for a usage or configuration error, 143 / 130 when stopped by
SIGTERM / SIGINT (nothing half published; a second signal exits at once). Every run leaves a
JSON report in <output>/_runs/ (and in --report FILE).";

/// Export PostgreSQL tables to Parquet, exactly: every row of one consistent snapshot, NOT NULL
/// columns as REQUIRED, numerics as DECIMAL, jsonb and arrays as JSON.
#[derive(Debug, Parser)]
#[command(name = "etl-app", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// How run and check report what they do on stderr: lines for people, or one JSON object
    /// per line (with run_id, table and event fields) for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, env = "ETL_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export tables to Parquet files.
    Run(Box<RunArgs>),
    /// Open a run split into shards on several machines: export the snapshot and hold it,
    /// publish the plan in the output, wait for every shard (`etl-app shard --run-name NAME
    /// --shard I`), then publish the tables, the run report, the metrics and the catalog.
    /// Nothing is published if a shard fails for good or the coordinator dies.
    Coordinate(Box<CoordinateArgs>),
    /// Read one shard of a sharded run (opened by `etl-app coordinate --run-name NAME` on the
    /// same --output): the tables and snapshot come from its plan, and its files wait in the
    /// output for the coordinator, which publishes them with everything else. A shard
    /// publishes nothing of its own: --report, the metrics flags and Glue belong to the
    /// coordinator. A retried shard replaces its own files.
    Shard(Box<ShardArgs>),
    /// List the registered tables with their columns.
    List(ListArgs),
    /// Compare every registered model with the live database; exit 1 listing each difference
    /// (column added, dropped, retyped, nullability changed).
    Check(CheckArgs),
    /// Show each table's published state in the output: its version, and for a table with a
    /// cursor where the next incremental run starts (and why there) and its batches.
    State(StateArgs),
    /// Fold each table's incremental batches into a new full version, without reading
    /// PostgreSQL: the current row of each key (deletions dropped), in the table's layout,
    /// published like an export; the next run goes on from the same state.
    Compact(CompactArgs),
}

/// How `list`, `check` and `state` print: a table for people, or one JSON document for
/// scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// `json`: one JSON document on stdout (an array of tables and tasks).
    #[arg(long, env = "ETL_FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Tables to compact, comma-separated; all registered tables with a cursor when left out.
    #[arg(long, env = "ETL_TABLES", value_delimiter = ',')]
    pub tables: Vec<String>,

    /// The output the runs write to: a directory, or s3://bucket/prefix.
    #[arg(long, env = "ETL_OUTPUT", default_value = "./etl-out")]
    pub output: String,

    /// Complete versions of each table kept, the new one included (as for `run`).
    #[arg(long, env = "ETL_KEEP_VERSIONS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_versions: u32,

    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Debug, Args)]
pub struct ShardArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// The sharded run to read a share of: the coordinator's --run-name.
    #[arg(long, env = "ETL_RUN_NAME", value_name = "NAME")]
    pub run_name: String,
}

#[derive(Debug, Args)]
pub struct CoordinateArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// Shards that read the run, each a process (a pod of an Indexed Job with this many
    /// completions). Each reads every K-th block range of every table.
    #[arg(long, env = "ETL_SHARDS", value_parser = clap::value_parser!(u32).range(1..=1024), value_name = "K")]
    pub shards: u32,

    /// The run's name, which every shard is given as --run-name (letters, digits, `.`, `_`,
    /// `-`; e.g. the Kubernetes Job's name).
    #[arg(long, env = "ETL_RUN_NAME", value_name = "NAME")]
    pub run_name: String,

    /// A shard whose attempts failed this many times fails the run (with Kubernetes:
    /// backoffLimitPerIndex + 1).
    #[arg(long, env = "ETL_SHARD_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub shard_attempts: u32,

    /// Fail the run if the shards have not all finished after this long (e.g. 90m, 6h).
    #[arg(long, env = "ETL_SHARD_TIMEOUT", default_value = "6h", value_parser = parse_duration, value_name = "DURATION")]
    pub shard_timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct StateArgs {
    /// Tables to show, comma-separated; all registered tables when left out.
    #[arg(long, env = "ETL_TABLES", value_delimiter = ',')]
    pub tables: Vec<String>,

    /// The output the runs write to: a directory, or s3://bucket/prefix.
    #[arg(long, env = "ETL_OUTPUT", default_value = "./etl-out")]
    pub output: String,

    /// `json`: one JSON document on stdout (an array, one object per table).
    #[arg(long, env = "ETL_FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(flatten)]
    pub s3: S3Args,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub database: Database,

    /// Tables to check, comma-separated; all registered tables when left out.
    #[arg(long, env = "ETL_TABLES", value_delimiter = ',')]
    pub tables: Vec<String>,

    /// `json`: one JSON document on stdout (the tables and their differences); the exit
    /// status is the same.
    #[arg(long, env = "ETL_FORMAT", value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct Database {
    /// The source database, e.g. postgres://user@host:5432/db?sslmode=verify-full. Its
    /// password is never printed, but one written on the command line is visible to other
    /// processes (`ps`): give it in DATABASE_URL, a file (below), or libpq's ~/.pgpass
    /// (PGPASSFILE).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// A file holding the source database's URL (a mounted secret), instead of DATABASE_URL;
    /// read at start, one trailing newline ignored.
    #[arg(long, env = "DATABASE_URL_FILE", value_name = "PATH")]
    pub database_url_file: Option<std::path::PathBuf>,

    /// A file holding the password of the URL's user (a mounted secret); read at start, one
    /// trailing newline ignored. The URL then carries no password of its own.
    #[arg(long, env = "DATABASE_PASSWORD_FILE", value_name = "PATH")]
    pub database_password_file: Option<std::path::PathBuf>,

    /// Log in with RDS / Aurora IAM database authentication: each new connection gives a token
    /// signed with the AWS default chain's credentials (region from AWS_REGION or the host)
    /// instead of a password. The URL must verify the server: sslmode=verify-full and
    /// sslrootcert=<the RDS CA bundle>.
    #[arg(long, env = "ETL_RDS_IAM", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub rds_iam: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub database: Database,

    /// Tables to export, comma-separated (`notes,sales.orders`); all registered tables when
    /// left out.
    #[arg(long, env = "ETL_TABLES", value_delimiter = ',')]
    pub tables: Vec<String>,

    /// Where to write: a directory, or s3://bucket/prefix. Each table goes to <output>/<table>/,
    /// replacing the previous export of that table only once the new one is complete.
    #[arg(long, env = "ETL_OUTPUT", default_value = "./etl-out")]
    pub output: String,

    /// Complete versions of each table kept, the new one included (at least 1); 2 lets a query
    /// started on the previous version finish. On S3 each export is a new version
    /// `<table>/v=<run id>/`, made current by `<table>/_manifest.json` and the Glue location. In
    /// a directory, the exports replaced are kept in `<output>/.etl-versions/<table>/` (hidden
    /// from readers of `<output>/<table>/`), and the oldest are removed while the next run reads.
    #[arg(long, env = "ETL_KEEP_VERSIONS", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_versions: u32,

    /// A file holding the key of masked columns (`#[etl(mask = "hmac_sha256")]`, a mounted
    /// secret; at least 16 bytes, one trailing newline ignored), or the key itself in
    /// ETL_MASK_KEY. Required when a table to export has masked columns: each of their values
    /// is written as HMAC-SHA256(key, the value's text) in hex. The same key gives the same
    /// hashes in every table and run, so masked columns still join; another key gives other
    /// hashes everywhere (export the tables anew with --full after changing it).
    #[arg(long, env = "ETL_MASK_KEY_FILE", value_name = "PATH")]
    pub mask_key_file: Option<PathBuf>,

    /// After a table with a cursor gets its batch, fold its batches into a new full version
    /// once it has this many (see `etl-app compact`).
    #[arg(long, env = "ETL_COMPACT_AFTER", value_parser = clap::value_parser!(u32).range(1..), value_name = "N")]
    pub compact_after: Option<u32>,

    #[command(flatten)]
    pub s3: S3Args,

    /// Parquet compression.
    #[arg(long, env = "ETL_COMPRESSION", value_enum, default_value_t = Compression::Zstd)]
    pub compression: Compression,

    /// zstd level (1-22); 1 is both the fastest and, on typical tables, as small as 3.
    #[arg(long, env = "ETL_ZSTD_LEVEL", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=22))]
    pub zstd_level: i32,

    /// Threads converting rows to Arrow (default: the number of CPUs). Each table being
    /// written uses one more thread for Parquet encoding and compression.
    #[arg(long, env = "ETL_THREADS", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: Option<u32>,

    /// A row group closes at this many rows ...
    #[arg(long, env = "ETL_ROW_GROUP_ROWS", default_value_t = 1_048_576, value_parser = clap::value_parser!(u64).range(1..))]
    pub row_group_rows: u64,

    /// ... or at this many bytes (e.g. 128MB), whichever comes first. Pages are spilled to
    /// disk while a row group is open, so this does not raise memory use.
    #[arg(long, env = "ETL_ROW_GROUP_BYTES", default_value = "128MB", value_parser = parse_nonzero_bytes)]
    pub row_group_bytes: u64,

    /// Cancel a table's read after this long (PostgreSQL statement_timeout).
    #[arg(long, env = "ETL_STATEMENT_TIMEOUT", default_value = "6h", value_parser = parse_duration, value_name = "DURATION")]
    pub statement_timeout: std::time::Duration,

    /// Connections reading one table at once, each on a range of its blocks, all on the run's
    /// snapshot (PostgreSQL 14 or later; a standby, an older server or a view is read on one
    /// stream, and the run says why). Default: one per two --threads, at most 4 (so 1 on two
    /// cores), fewer for a small table. Each connection is a backend busy on the server: on a
    /// busy primary keep 1; against a server with cores to spare, try 2 or more.
    #[arg(long, env = "ETL_READ_PARALLELISM", value_parser = clap::value_parser!(u32).range(1..=64), value_name = "N")]
    pub read_parallelism: Option<u32>,

    /// Pages (8 KB each) per block range of a parallel or sharded read: ranges are handed out
    /// one at a time, so smaller ones share a bloated region out more evenly, at a statement
    /// per range.
    #[arg(long, env = "ETL_RANGE_PAGES", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..), value_name = "PAGES")]
    pub range_pages: u64,

    /// `etl-app run --shard-of NAME` is `etl-app shard --run-name NAME`.
    #[arg(long, env = "ETL_SHARD_OF", value_name = "NAME", hide = true)]
    pub shard_of: Option<String>,

    /// For `etl-app shard`: this shard's index, 0 to K-1; a Kubernetes Indexed Job sets it
    /// (JOB_COMPLETION_INDEX).
    #[arg(long, env = "JOB_COMPLETION_INDEX", value_name = "I")]
    pub shard: Option<u32>,

    /// Tables exported at the same time (each uses --read-parallelism database connections).
    #[arg(long, env = "ETL_PARALLEL_TABLES", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub parallel_tables: u32,

    /// Tables with a cursor (`#[etl(cursor = "updated_at")]`) are exported in full by their
    /// first run, then by batches of the rows changed since the last run. --full exports them
    /// in full again: a new version, which replaces the batches.
    #[arg(long)]
    pub full: bool,

    /// Start incremental batches this much earlier (e.g. 10m, 2h). Needed when cursors come
    /// from clients' clocks; and when the role cannot see other sessions' transactions (no
    /// pg_read_all_stats), the watermark is the snapshot's time minus this (default 15m)
    /// instead of the start of the oldest open transaction.
    #[arg(long, env = "ETL_LOOKBACK", value_parser = parse_duration, value_name = "DURATION")]
    pub lookback: Option<std::time::Duration>,

    /// Start a new file once a file reaches this many bytes: Athena's sweet spot by default,
    /// and what keeps memory flat however large the table (a file's page index is held until
    /// it is closed). 0: one file per table (per partition).
    #[arg(long, env = "ETL_MAX_FILE_BYTES", value_parser = parse_bytes, default_value = "512MB")]
    pub max_file_bytes: u64,

    /// Also write the run report (JSON: every table's outcome, rows, bytes, errors; see the
    /// README) to this file, whatever the outcome. It is always written beside the data, as
    /// <output>/_runs/<run id>.json, once the run reached the output.
    #[arg(long, env = "ETL_REPORT", value_name = "FILE")]
    pub report: Option<PathBuf>,

    /// At the end of the run, failed or not, push per-table metrics (rows, bytes, duration,
    /// success, and the last success time) to this Prometheus Pushgateway, grouped by job and
    /// table (e.g. http://pushgateway.monitoring:9091).
    #[arg(long, env = "ETL_PUSHGATEWAY", value_name = "URL")]
    pub pushgateway: Option<String>,

    /// Write the same metrics to this file for node-exporter's textfile collector (replaced
    /// whole; name it *.prom).
    #[arg(long, env = "ETL_METRICS_FILE", value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    /// The job label of the metrics.
    #[arg(
        long,
        env = "ETL_METRICS_JOB",
        default_value = "etl",
        value_name = "NAME"
    )]
    pub metrics_job: String,
}

/// S3 output (`--output s3://bucket/prefix`). Credentials and region come from the AWS default
/// chain: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity (Kubernetes
/// service accounts), instance metadata; AWS_REGION; AWS_ENDPOINT_URL for S3-compatible stores.
#[derive(Debug, Args)]
pub struct S3Args {
    /// Path-style addressing (endpoint/bucket/key), which most S3-compatible stores need.
    #[arg(long, env = "ETL_S3_PATH_STYLE", value_parser = clap::builder::BoolishValueParser::new(), default_value_t = false)]
    pub s3_path_style: bool,

    /// Multipart part size, at least 5MB (files larger than this go up in parts, each read
    /// from disk as it is sent). Default: 64MB.
    #[arg(long, env = "ETL_S3_PART_SIZE", value_parser = parse_bytes)]
    pub s3_part_size: Option<u64>,

    /// Upload requests (whole files, parts of large files) in flight at once, for the whole
    /// run. Each S3 request waits tens of milliseconds for its answer; bodies stream from the
    /// staged files, so memory does not grow with this.
    #[arg(long, env = "ETL_S3_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=256), value_name = "N")]
    pub s3_concurrency: u32,

    /// Server-side encryption of the uploaded objects.
    #[arg(long, env = "ETL_SSE", value_enum)]
    pub sse: Option<Sse>,

    /// The KMS key for --sse aws:kms (default: the bucket's AWS managed key).
    #[arg(long, env = "ETL_SSE_KMS_KEY_ID", requires = "sse")]
    pub sse_kms_key_id: Option<String>,

    /// Local directory for files before they are uploaded (default: the system's temp dir).
    #[arg(long, env = "ETL_STAGING_DIR")]
    pub staging_dir: Option<PathBuf>,

    /// After every upload succeeded, create or update each table's definition in this Glue
    /// database, with exact types from the model (decimal(p,s), timestamp, array<...>).
    #[arg(long, env = "ETL_GLUE_DATABASE", requires = "output")]
    pub glue_database: Option<String>,

    /// How Athena finds a partitioned table's partitions: `projection` writes partition
    /// projection on the Glue table (no crawler, no MSCK REPAIR); `register` registers every
    /// partition (BatchCreatePartition) for engines without projection.
    #[arg(long, env = "ETL_GLUE_PARTITIONS", value_enum, default_value_t = GluePartitionsArg::Projection, requires = "glue_database")]
    pub glue_partitions: GluePartitionsArg,

    /// After every upload succeeded, point this Glue crawler at the exported prefixes and start it.
    #[arg(long, env = "ETL_GLUE_CRAWLER")]
    pub glue_crawler: Option<String>,

    /// Wait for the crawler to finish (up to this long; 15m when given alone) and report how
    /// it ended.
    #[arg(long, requires = "glue_crawler", num_args = 0..=1, default_missing_value = "15m", value_parser = parse_duration, value_name = "DURATION")]
    pub wait: Option<std::time::Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GluePartitionsArg {
    Projection,
    Register,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sse {
    #[value(name = "AES256")]
    Aes256,
    #[value(name = "aws:kms")]
    AwsKms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    Zstd,
    Snappy,
    None,
}

/// `90s`, `15m`, `2h`, `1d`; a bare number is seconds.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 90s, 15m, 2h or 1d"))?;
    let seconds = match unit {
        // A bare number is seconds, as these flags once took them.
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit is s, m, h or d (e.g. 15m)")),
    };
    Ok(std::time::Duration::from_secs(number * seconds))
}

/// A size that must hold something: a row group of 0 bytes has no meaning.
fn parse_nonzero_bytes(text: &str) -> Result<u64, String> {
    match parse_bytes(text)? {
        0 => Err(format!("`{text}`: the size must be at least 1 byte")),
        bytes => Ok(bytes),
    }
}

/// `512MB`, `1GiB`, `1048576`.
fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size like 512MB"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" | "kib" => 1 << 10,
        "mb" | "m" | "mib" => 1 << 20,
        "gb" | "g" | "gib" => 1 << 30,
        other => return Err(format!("unknown unit `{other}` (use KB, MB or GB)")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(parse_bytes("512MB"), Ok(512 << 20));
        assert_eq!(parse_bytes("1024"), Ok(1024));
        assert!(parse_bytes("12 parsecs").is_err());
    }

    /// Every duration flag reads the same syntax; a bare number is seconds.
    #[test]
    fn durations_read_like_people_write_them() {
        let secs = |s: &str| parse_duration(s).map(|d| d.as_secs());
        assert_eq!(secs("90s"), Ok(90));
        assert_eq!(secs("15m"), Ok(900));
        assert_eq!(secs("6h"), Ok(21_600));
        assert_eq!(secs("1d"), Ok(86_400));
        assert_eq!(secs("3600"), Ok(3600));
        assert!(parse_duration("15 minutes").is_err());
        let cli = Cli::try_parse_from([
            "etl-app",
            "run",
            "--statement-timeout",
            "30m",
            "--output",
            "s3://bucket/x",
            "--glue-crawler",
            "c",
            "--wait",
            "2m",
        ])
        .expect("parses");
        let Command::Run(run) = cli.command else {
            panic!("run")
        };
        assert_eq!(run.statement_timeout.as_secs(), 1800);
        assert_eq!(run.s3.wait.map(|d| d.as_secs()), Some(120));
    }
}
