//! The configuration of a run, built from the command line and checked before any I/O: a
//! malformed connection string or output location, or a flag that does not apply to the chosen
//! output, is a usage error (exit 2) that names the flag, before a connection is opened.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::anyhow;
use etl_runtime::run::export::{Converters, ExportOptions};
use etl_runtime::run::incremental::IncrementalOptions;
use etl_runtime::sink::glue::PartitionDiscovery;
use etl_runtime::sink::s3::{S3Options, ServerSideEncryption};
use etl_runtime::source::SourceOptions;
use etl_runtime::source::ranges::{ReadOptions, ReadParallelism};
use etl_runtime::sqlx::postgres::{PgConnectOptions, PgSslMode};
use etl_runtime::write::{Codec, ParquetOptions};
use etl_runtime::{Export, MaskKey, PgSource, Registry, redact_url};

use crate::Failure;
use crate::cli::{Compression, Database, GluePartitionsArg, RunArgs, S3Args, Sse};

/// S3's default part size when `--s3-part-size` is left out.
const DEFAULT_PART_SIZE: u64 = 64 << 20;

/// Everything `etl-app run` needs, checked.
pub struct RunConfig {
    /// The connection string as given (password included): never print it.
    pub database: SourceDb,
    pub exports: Vec<Export>,
    pub output: Output,
    pub export: ExportOptions,
    pub source: SourceOptions,
    pub parallel_tables: usize,
    pub catalog: Catalog,
    /// Where to write the run report too (`--report`).
    pub report: Option<PathBuf>,
    pub metrics: Metrics,
    /// This run's part in a sharded run, if any.
    pub shard: Option<ShardRole>,
    /// Compact a table with a cursor once it has this many batches (`--compact-after`).
    pub compact_after: Option<usize>,
}

/// A process of a sharded run.
pub enum ShardRole {
    Coordinator {
        run_name: String,
        shards: usize,
        attempts: usize,
        timeout: Duration,
    },
    Shard {
        run_name: String,
        index: usize,
    },
}

/// Where the run's metrics go.
pub struct Metrics {
    pub pushgateway: Option<String>,
    pub file: Option<PathBuf>,
    pub job: String,
}

/// Where the run publishes.
pub enum Output {
    Local {
        dir: PathBuf,
        /// Complete exports of each table kept, the published one included.
        keep_versions: usize,
    },
    S3(S3Options),
}

impl Output {
    /// The output for messages and the run report.
    pub fn location(&self) -> String {
        match self {
            Output::Local { dir, .. } => dir.display().to_string(),
            Output::S3(s3) => format!("s3://{}/{}", s3.bucket, s3.prefix),
        }
    }
}

/// What the Glue catalog is told once every table is published (S3 output only).
#[derive(Default)]
pub struct Catalog {
    pub database: Option<String>,
    pub crawler: Option<String>,
    /// Wait this long for the crawler to finish; `None` starts it and returns.
    pub wait: Option<Duration>,
    /// How a partitioned table's partitions are found.
    pub partitions: PartitionDiscovery,
}

impl Catalog {
    pub fn is_empty(&self) -> bool {
        self.database.is_none() && self.crawler.is_none()
    }
}

/// The flags that only mean something for S3 output, by their clap ids and as written.
const S3_ONLY: &[(&str, &str)] = &[
    ("sse", "--sse"),
    ("sse_kms_key_id", "--sse-kms-key-id"),
    ("s3_part_size", "--s3-part-size"),
    ("s3_concurrency", "--s3-concurrency"),
    ("s3_path_style", "--s3-path-style"),
    ("staging_dir", "--staging-dir"),
    ("glue_partitions", "--glue-partitions"),
    ("glue_database", "--glue-database"),
    ("glue_crawler", "--glue-crawler"),
    ("wait", "--wait"),
];

/// Flags (clap ids) whose work is the coordinator's in a sharded run.
const SHARD_REFUSES: &[(&str, &str)] = &[
    ("report", "--report"),
    ("pushgateway", "--pushgateway"),
    ("metrics_file", "--metrics-file"),
    ("metrics_job", "--metrics-job"),
    ("glue_database", "--glue-database"),
    ("glue_crawler", "--glue-crawler"),
    ("compact_after", "--compact-after"),
];

impl RunConfig {
    /// Checks `args`; `given(id)` says whether the flag with clap id `id` was written on the
    /// command line (a value from the environment, such as `ETL_S3_PATH_STYLE` set for every
    /// job of a scheduler, is not a mistake).
    pub fn new(
        args: RunArgs,
        given: impl Fn(&str) -> bool,
        registry: &Registry,
    ) -> Result<Self, Failure> {
        let database = checked_database_url(&args.database, given("database_url"))?;
        require_exports(registry)?;
        let exports = registry.select(&args.tables)?;
        let mask_key = mask_key(args.mask_key_file.as_deref())?;
        // A shard's tables come from its run's plan: a table of it with masked columns and no
        // key stops there, with the same message.
        if mask_key.is_none() && args.shard_of.is_none() {
            require_mask_key(&exports)?;
        }
        let output = if args.output.starts_with("s3:") {
            Output::S3(S3Options {
                keep_versions: args.keep_versions as usize,
                ..s3_options(&args.output, &args.s3)?
            })
        } else {
            if let Some((_, flag)) = S3_ONLY.iter().find(|(id, _)| given(id)) {
                return Err(usage(format!(
                    "{flag} applies to S3 output only, but --output is the local directory `{}`; \
                     write --output s3://bucket/prefix or leave {flag} out",
                    args.output
                )));
            }
            Output::Local {
                dir: PathBuf::from(&args.output),
                keep_versions: args.keep_versions as usize,
            }
        };
        let threads = args.threads.map_or_else(
            || std::thread::available_parallelism().map_or(1, usize::from),
            |n| n as usize,
        );
        let export = ExportOptions {
            parquet: ParquetOptions {
                codec: match args.compression {
                    Compression::Zstd => Codec::Zstd(args.zstd_level),
                    Compression::Snappy => Codec::Snappy,
                    Compression::None => Codec::None,
                },
                row_group_rows: usize::try_from(args.row_group_rows).unwrap_or(usize::MAX),
                row_group_bytes: usize::try_from(args.row_group_bytes).unwrap_or(usize::MAX),
                ..ParquetOptions::default()
            },
            max_file_bytes: (args.max_file_bytes > 0).then_some(args.max_file_bytes),
            converters: Converters::new(threads)?,
            progress: crate::progress::observer(),
            incremental: IncrementalOptions {
                full: args.full,
                lookback: args.lookback,
            },
            read: ReadOptions {
                parallelism: match args.read_parallelism {
                    Some(n) => ReadParallelism::Connections(n as usize),
                    // A connection's rows keep about two threads busy (reading and
                    // converting, encoding and compressing): more connections than cores
                    // allow only add contention, the server's included when it shares them.
                    None => ReadParallelism::Auto {
                        max: (threads / 2).clamp(1, 4),
                    },
                },
                range_pages: args.range_pages,
                ..ReadOptions::default()
            },
            mask_key,
            ..ExportOptions::default()
        };
        // Every table read at once holds its connections, plus the snapshot's own.
        let per_table = u32::try_from(export.read.parallelism.max()).unwrap_or(64);
        let source = SourceOptions {
            max_connections: args.parallel_tables * per_table + 1,
            statement_timeout: args.statement_timeout,
            ..SourceOptions::default()
        };
        if let Some(url) = &args.pushgateway {
            crate::metrics::check_url(url).map_err(|e| usage(format!("--pushgateway: {e}")))?;
        }
        let metrics = Metrics {
            pushgateway: args.pushgateway.clone(),
            file: args.metrics_file.clone(),
            job: args.metrics_job.clone(),
        };
        // Only for S3 output: an S3-only setting from the environment (a scheduler's, for
        // every job) means nothing for a local directory, as the command line's would be refused.
        let on_s3 = matches!(output, Output::S3(_));
        let catalog = Catalog {
            database: args.s3.glue_database.filter(|_| on_s3),
            crawler: args.s3.glue_crawler.filter(|_| on_s3),
            wait: args.s3.wait,
            partitions: match args.s3.glue_partitions {
                GluePartitionsArg::Projection => PartitionDiscovery::Projection,
                GluePartitionsArg::Register => PartitionDiscovery::Register,
            },
        };
        let shard = match (args.shard_of, args.shard) {
            (Some(run_name), Some(index)) => Some(ShardRole::Shard {
                run_name,
                index: index as usize,
            }),
            (Some(_), None) => {
                return Err(usage(
                    "a shard needs its index: --shard I (or JOB_COMPLETION_INDEX)",
                ));
            }
            // JOB_COMPLETION_INDEX alone (any Indexed Job) does not make a shard.
            (None, _) => None,
        };
        let config = Self {
            database,
            exports,
            output,
            export,
            source,
            parallel_tables: args.parallel_tables as usize,
            catalog,
            report: args.report,
            metrics,
            shard,
            compact_after: args.compact_after.map(|n| n as usize),
        };
        // A shard's tables come from the run's plan, not from --tables.
        if let Some(ShardRole::Shard { run_name, .. }) = &config.shard {
            config.check_shard_output(run_name)?;
            // What a run publishes besides its tables is the coordinator's; a flag asking a
            // shard for it would be silently ignored. (From the environment, set for every job
            // of a scheduler, it is not a mistake.)
            for (id, flag) in SHARD_REFUSES {
                if given(id) {
                    return Err(usage(format!(
                        "{flag}: a shard publishes nothing of its own; give it to `etl-app \
                         coordinate`, which publishes the tables, the run report, the metrics \
                         and the catalog"
                    )));
                }
            }
        }
        Ok(config)
    }

    /// `etl-app shard`: one shard's share of the run its coordinator named.
    pub fn shard(
        args: crate::cli::ShardArgs,
        given: impl Fn(&str) -> bool,
        registry: &Registry,
    ) -> Result<Self, Failure> {
        let mut run = args.run;
        match &run.shard_of {
            Some(other) if *other != args.run_name => {
                return Err(usage(format!(
                    "--shard-of {other} and --run-name {} name two runs; keep --run-name",
                    args.run_name
                )));
            }
            _ => run.shard_of = Some(args.run_name),
        }
        Self::new(run, given, registry)
    }

    /// `etl-app coordinate`: a run, plus the shards' part.
    pub fn coordinator(
        args: crate::cli::CoordinateArgs,
        given: impl Fn(&str) -> bool,
        registry: &Registry,
    ) -> Result<Self, Failure> {
        if args.run.shard_of.is_some() {
            return Err(usage(
                "--shard-of is for the shards (etl-app shard); the coordinator names the run with --run-name",
            ));
        }
        let mut config = Self::new(args.run, given, registry)?;
        config.check_shardable(&args.run_name)?;
        config.shard = Some(ShardRole::Coordinator {
            run_name: args.run_name,
            shards: args.shards as usize,
            attempts: args.shard_attempts as usize,
            timeout: args.shard_timeout,
        });
        Ok(config)
    }

    /// What a sharded run can do today: tables (not tasks, which read their source whole;
    /// not incremental tables, whose batches one run writes) to a directory every shard sees.
    fn check_shardable(&self, run_name: &str) -> Result<(), Failure> {
        self.check_shard_output(run_name)?;
        for export in &self.exports {
            if export.kind == etl_runtime::run::registry::ExportKind::Task {
                return Err(usage(format!(
                    "{} is a task: tasks read their source whole; run them with etl-app run \
                     (choose the tables with --tables)",
                    export.name()
                )));
            }
            if export.info.cursor.is_some() {
                return Err(usage(format!(
                    "{} has a cursor: its incremental batches are written by etl-app run \
                     (choose the tables with --tables)",
                    export.name()
                )));
            }
        }
        Ok(())
    }

    fn check_shard_output(&self, run_name: &str) -> Result<(), Failure> {
        etl_runtime::run::shard::check_run_name(run_name)
            .map_err(|e| usage(format!("--run-name: {e}")))?;
        Ok(())
    }
}

/// What a binary without models says.
pub const NO_MODELS: &str = "no tables are registered yet: generate a model per table with \
    `cargo xtask gen --table NAME` (or `--all`) against your database, then rebuild etl-app. \
    (The demo's tables are exported by `etl-demo`, `cargo xtask demo`.)";

/// A binary with nothing registered cannot run or check anything: a usage error saying how to
/// add models.
pub fn require_exports(registry: &Registry) -> Result<(), Failure> {
    if registry.all().is_empty() {
        Err(usage(NO_MODELS))
    } else {
        Ok(())
    }
}

/// `DATABASE_URL` / `--database-url`, present and parseable as a PostgreSQL connection string.
/// The source database's URL, from `--database-url` / `DATABASE_URL` or a file, with the
/// password of `--database-password-file` in it, checked before any connection. Nothing read
/// from a secret's file is ever printed; a password written on the command line
/// (`url_on_command_line`) gets a warning.
pub fn checked_database_url(
    database: &Database,
    url_on_command_line: bool,
) -> Result<SourceDb, Failure> {
    let from_file = match &database.database_url_file {
        Some(path) => Some(read_secret(
            path,
            "--database-url-file / DATABASE_URL_FILE",
        )?),
        None => None,
    };
    let given = database.database_url.as_deref().filter(|u| !u.is_empty());
    let url = match (given, from_file) {
        (Some(_), Some(_)) => {
            return Err(usage(
                "both DATABASE_URL (or --database-url) and DATABASE_URL_FILE (or \
                 --database-url-file) name the source database: keep one",
            ));
        }
        (Some(url), None) => url.to_string(),
        (None, Some(url)) => url,
        (None, None) => {
            return Err(usage(
                "no source database: set DATABASE_URL (or pass --database-url, or \
                 --database-url-file with a mounted secret), e.g.\n  \
                 DATABASE_URL=postgres://user@host:5432/db etl-app run\n\
                 To try etl-app on a throwaway database, run `cargo xtask demo`.",
            ));
        }
    };
    if let Err(e) = PgConnectOptions::from_str(&url) {
        let redacted = redact_url(&url);
        // The parser's message could quote the string; only ever show it redacted.
        let reason = e.to_string().replace(&url, &redacted);
        return Err(usage(format!(
            "DATABASE_URL (or --database-url) `{redacted}` is not a PostgreSQL connection string: {reason}"
        )));
    }
    let has_password = etl_runtime::source::url_password(&url).is_some();
    if database.rds_iam {
        check_rds_iam(
            &url,
            has_password || database.database_password_file.is_some(),
        )?;
        return Ok(SourceDb { url, rds_iam: true });
    }
    if url_on_command_line && has_password {
        crate::log::warn(
            "password_on_command_line",
            "the password in --database-url is visible to other processes (ps, /proc); give \
             it in DATABASE_URL, --database-password-file or ~/.pgpass instead",
        );
    }
    let Some(path) = &database.database_password_file else {
        return Ok(SourceDb {
            url,
            rds_iam: false,
        });
    };
    if has_password {
        return Err(usage(
            "the database URL carries a password and --database-password-file \
             (DATABASE_PASSWORD_FILE) gives another: keep one",
        ));
    }
    let password = read_secret(path, "--database-password-file / DATABASE_PASSWORD_FILE")?;
    let url = etl_runtime::source::with_password(&url, &password)
        .map_err(|reason| usage(format!("--database-password-file: {reason}")))?;
    Ok(SourceDb {
        url,
        rds_iam: false,
    })
}

/// The source database, checked: its URL (password included, never printed) and whether
/// each connection logs in with an RDS IAM token instead.
pub struct SourceDb {
    pub url: String,
    pub rds_iam: bool,
}

impl SourceDb {
    /// Connects with `options`, and with a token source when IAM authentication is asked for.
    pub async fn connect(&self, options: &SourceOptions) -> etl_runtime::Result<PgSource> {
        let mut options = options.clone();
        if self.rds_iam {
            let auth = etl_runtime::source::iam::RdsIamAuth::from_default_chain(&self.url).await?;
            options.password = Some(std::sync::Arc::new(auth));
        }
        PgSource::connect(&self.url, &options).await
    }
}

/// IAM authentication replaces the password and needs TLS that checks the server: a token is a
/// bearer credential for 15 minutes.
fn check_rds_iam(url: &str, has_password: bool) -> Result<(), Failure> {
    if has_password {
        return Err(usage(
            "--rds-iam makes a token in place of the password: leave the password out of the \
             URL and --database-password-file",
        ));
    }
    let verify_full = PgConnectOptions::from_str(url)
        .is_ok_and(|o| matches!(o.get_ssl_mode(), PgSslMode::VerifyFull));
    let root_cert = url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|p| p.starts_with("sslrootcert=")));
    if !verify_full || !root_cert {
        return Err(usage(
            "--rds-iam sends a token that admits anyone who holds it for 15 minutes: the URL \
             must verify the server, with sslmode=verify-full&sslrootcert=/path/to/global-bundle.pem \
             (the RDS CA bundle)",
        ));
    }
    Ok(())
}

/// The text of a mounted secret at `path`, less one trailing newline (`\n` or `\r\n`, as
/// `echo` and editors leave). The error names the flag and the file, never the content.
/// The mask key from `--mask-key-file` or ETL_MASK_KEY (not both), if given.
fn mask_key(file: Option<&std::path::Path>) -> Result<Option<MaskKey>, Failure> {
    let from_env = std::env::var_os("ETL_MASK_KEY").filter(|v| !v.is_empty());
    match (file, from_env) {
        (Some(_), Some(_)) => Err(usage(
            "--mask-key-file (ETL_MASK_KEY_FILE) and ETL_MASK_KEY both give a mask key: keep one",
        )),
        (Some(path), None) => MaskKey::from_file(path)
            .map(Some)
            .map_err(|e| usage(format!("--mask-key-file: {e}"))),
        (None, Some(value)) => {
            use std::os::unix::ffi::OsStrExt;
            MaskKey::new(value.as_bytes())
                .map(Some)
                .map_err(|e| usage(format!("ETL_MASK_KEY: {e}")))
        }
        (None, None) => Ok(None),
    }
}

/// Tables with masked columns are not exported without a key: their values would have to be
/// written unmasked or not at all.
fn require_mask_key(exports: &[Export]) -> Result<(), Failure> {
    let masked: Vec<String> = exports
        .iter()
        .filter_map(|export| {
            let columns: Vec<&str> = export
                .info
                .columns
                .iter()
                .filter(|c| c.mask.is_some())
                .map(|c| c.name)
                .collect();
            (!columns.is_empty()).then(|| format!("{} ({})", export.name(), columns.join(", ")))
        })
        .collect();
    if masked.is_empty() {
        return Ok(());
    }
    Err(usage(format!(
        "masked columns need a key: {}; give --mask-key-file (ETL_MASK_KEY_FILE) or ETL_MASK_KEY",
        masked.join("; ")
    )))
}

fn read_secret(path: &std::path::Path, flag: &str) -> Result<String, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("{flag}: cannot read {}: {e}", path.display())))?;
    let text = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if text.is_empty() {
        return Err(usage(format!("{flag}: {} is empty", path.display())));
    }
    Ok(text.to_string())
}

pub(crate) fn s3_options(output: &str, s3: &S3Args) -> Result<S3Options, Failure> {
    let (bucket, prefix) = S3Options::parse_url(output).ok_or_else(|| {
        usage(format!(
            "--output `{}` is not an S3 location; write s3://bucket/prefix",
            output
        ))
    })?;
    if !valid_bucket(&bucket) {
        return Err(usage(format!(
            "--output `{}`: `{bucket}` is not an S3 bucket name (3-63 characters: lower-case letters, digits, dots and hyphens)",
            output
        )));
    }
    let part_size = s3.s3_part_size.unwrap_or(DEFAULT_PART_SIZE);
    if part_size < 5 << 20 {
        return Err(usage(format!(
            "--s3-part-size {part_size}: S3 parts are at least 5MB"
        )));
    }
    Ok(S3Options {
        bucket,
        prefix,
        path_style: s3.s3_path_style,
        part_size: usize::try_from(part_size).unwrap_or(usize::MAX),
        concurrency: s3.s3_concurrency as usize,
        // A run's own count (`--keep-versions`) replaces it; other commands delete nothing.
        keep_versions: 1,
        sse: s3.sse.map(|sse| match sse {
            Sse::Aes256 => ServerSideEncryption::Aes256,
            Sse::AwsKms => ServerSideEncryption::AwsKms,
        }),
        sse_kms_key_id: s3.sse_kms_key_id.clone(),
        staging_dir: s3
            .staging_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("etl-staging")),
    })
}

/// S3's bucket naming rules, as far as they can be checked without asking S3.
fn valid_bucket(bucket: &str) -> bool {
    (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && bucket
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && bucket
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

fn usage(message: impl Into<String>) -> Failure {
    Failure::Usage(anyhow!(message.into()))
}

#[cfg(test)]
mod tests {
    use super::{mask_key, require_mask_key, valid_bucket};
    use crate::Failure;

    mod models {
        use etl_runtime::EtlTable;

        #[derive(EtlTable)]
        #[etl(table = "people", primary_key(id))]
        pub struct Person {
            pub id: i64,
            #[etl(mask = "hmac_sha256")]
            pub email: String,
            #[etl(mask = "hmac_sha256")]
            pub phone: Option<String>,
        }

        #[derive(EtlTable)]
        #[etl(table = "notes", primary_key(id))]
        pub struct Note {
            pub id: i64,
        }
    }

    fn usage_message(result: Result<impl Sized, Failure>) -> String {
        match result {
            Err(Failure::Usage(e)) => e.to_string(),
            Err(Failure::Runtime(e)) => panic!("a runtime failure, not a usage error: {e}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[test]
    fn masked_tables_need_a_key_that_is_never_shown() {
        use etl_runtime::Export;
        let person = Export::table::<models::Person>();
        let note = Export::table::<models::Note>();
        assert!(require_mask_key(&[note]).is_ok(), "nothing masked");
        let message = usage_message(require_mask_key(&[note, person]));
        assert!(message.contains("people (email, phone)"), "{message}");
        assert!(message.contains("--mask-key-file"), "{message}");

        let dir = std::env::temp_dir().join(format!("etl-mask-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let short = dir.join("short");
        std::fs::write(&short, "hunter2\n").expect("write");
        let message = usage_message(mask_key(Some(&short)));
        assert!(message.contains("7 bytes; at least 16"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        let good = dir.join("good");
        std::fs::write(&good, "0123456789abcdef0123456789abcdef\n").expect("write");
        let key = mask_key(Some(&good)).ok().flatten().expect("a key");
        assert!(!format!("{key:?}").contains("0123"), "{key:?}");
        let message = usage_message(mask_key(Some(&dir.join("missing"))));
        assert!(
            message.contains("cannot read the mask key file"),
            "{message}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        assert!(valid_bucket("analytics-raw"));
        assert!(valid_bucket("a.b-c1"));
        assert!(!valid_bucket("ab"));
        assert!(!valid_bucket("Upper"));
        assert!(!valid_bucket("-leading"));
        assert!(!valid_bucket("under_score"));
    }
}
