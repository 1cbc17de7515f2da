//! The PostgreSQL side: read-only sessions, one snapshot shared by every table of a run
//! ([`PgSource`]), the COPY stream cut into tuples ([`copy`]), a table's block ranges for
//! reading it through several connections ([`ranges`]), and the comparison of a model with the
//! live table ([`drift`]).

pub mod copy;
pub mod drift;
#[cfg(feature = "s3")]
pub mod iam;
pub mod keys;
pub mod pgoutput;
pub mod ranges;

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Postgres, Transaction};

use tokio::sync::Mutex;

use crate::error::{Error, Result};

/// Session settings for every connection of a run.
#[derive(Debug, Clone)]
pub struct SourceOptions {
    /// `application_name`, so that DBAs can see who is reading (pg_stat_activity).
    pub application_name: String,
    /// `statement_timeout` of each session; the export of one table is one statement.
    pub statement_timeout: Duration,
    /// Connections in the pool: one per table exported at once, plus the snapshot holder.
    pub max_connections: u32,
    /// Gives each new connection its password instead of the URL (RDS IAM authentication).
    pub password: Option<Arc<dyn PasswordSource>>,
}

/// What gives new connections their password, instead of the URL: RDS IAM authentication
/// ([`iam::RdsIamAuth`]), whose tokens admit connections for 15 minutes, so that a run that
/// opens connections later (block ranges, shards, long runs, the tasks' lookups) asks again.
pub trait PasswordSource: Send + Sync + std::fmt::Debug {
    /// What the password is, for errors ("RDS IAM authentication").
    fn name(&self) -> &'static str;
    /// A password good for a connection opened now.
    fn password(&self) -> crate::sink::BoxFuture<'_, Result<String>>;
}

/// A password from a [`PasswordSource`] is asked for again once it is this old: well inside an
/// IAM token's 15 minutes.
const PASSWORD_RENEWED_AFTER: Duration = Duration::from_secs(5 * 60);

/// Opens a transaction that reads one snapshot and cannot write.
const BEGIN_READ: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

impl SourceOptions {
    /// The settings of every session of a run, whichever library opens it.
    fn session_settings(&self) -> [(&'static str, String); 5] {
        [
            ("application_name", self.application_name.clone()),
            ("default_transaction_read_only", "on".into()),
            (
                "statement_timeout",
                self.statement_timeout.as_millis().to_string(),
            ),
            // `interval::text` in ISO 8601, timestamptz casts in UTC.
            ("intervalstyle", "iso_8601".into()),
            ("TimeZone", "UTC".into()),
        ]
    }
}

impl Default for SourceOptions {
    fn default() -> Self {
        Self {
            application_name: "etl-app".into(),
            statement_timeout: Duration::from_secs(6 * 3600),
            max_connections: 2,
            password: None,
        }
    }
}

/// A read-only PostgreSQL source.
pub struct PgSource {
    pool: PgPool,
    url: String,
    /// The URL as given, password included, for the tasks' Diesel connection. Never printed.
    connection_url: String,
    /// The transaction whose snapshot every table reads, held open for the run.
    snapshot_holder: Mutex<Option<Transaction<'static, Postgres>>>,
    snapshot: Option<Snapshot>,
    options: SourceOptions,
    /// When the pool's connect options last got a password from `options.password`.
    password_issued: std::sync::Mutex<Instant>,
}

/// A snapshot exported with `pg_export_snapshot()`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub id: String,
    /// The server's clock when the snapshot was taken (RFC 3339).
    pub taken_at: String,
    /// The snapshot as PostgreSQL writes it (`xmin:xmax:xip,...`), for the record.
    pub xids: String,
    /// The transactions open just before the snapshot was taken: what incremental runs'
    /// watermarks are derived from. None if they could not be read (and in a shard plan,
    /// which does not carry them: shards keep no incremental state).
    #[serde(skip)]
    pub open_transactions: Option<OpenTransactions>,
}

/// What `pg_stat_activity` said just before the run's snapshot was taken.
///
/// A row the snapshot cannot see was written by a transaction still open when it was taken
/// (or started later). One open then was open when `pg_stat_activity` was read a moment before,
/// so its start is at least `oldest_start`; one started later starts after `read_at`. A cursor
/// set from the server's clock (`now()`, `clock_timestamp()`) in such a transaction is
/// therefore at least `min(read_at, oldest_start)`: the next run may start there and miss
/// nothing. Read in its own statement *before* the snapshot: read after it, a transaction
/// that committed in between would be neither visible nor listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenTransactions {
    /// The server's clock when `pg_stat_activity` was read, in microseconds since 1970 (UTC).
    pub read_at_micros: i64,
    /// The start of the oldest other transaction then open (microseconds since 1970).
    pub oldest_start_micros: Option<i64>,
    /// Whether the role sees every session's transaction (superuser or `pg_read_all_stats`):
    /// without it, other roles' sessions show no start and the watermark cannot be trusted.
    pub sees_all_sessions: bool,
}

/// Oldest transaction start among other sessions, and whether this role may see them all.
/// Autovacuum and WAL senders write no rows of the tables.
const OPEN_TRANSACTIONS_SQL: &str = "SELECT \
    floor(extract(epoch FROM now()) * 1000000)::int8, \
    (SELECT floor(extract(epoch FROM min(xact_start)) * 1000000)::int8 FROM pg_stat_activity \
      WHERE pid <> pg_backend_pid() AND xact_start IS NOT NULL \
        AND backend_type NOT IN ('autovacuum worker', 'autovacuum launcher', 'walsender')), \
    (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \
      OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')";

impl PgSource {
    /// Connects with READ ONLY sessions. The URL's password never appears in errors.
    pub async fn connect(url: &str, options: &SourceOptions) -> Result<Self> {
        let redacted = redact_url(url);
        let connect_err = |source| Error::Connect {
            url: redacted.clone(),
            source,
        };
        let settings = options.session_settings();
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(connect_err)?
            .application_name(&options.application_name)
            .options(
                settings
                    .iter()
                    .filter(|(name, _)| *name != "application_name")
                    .map(|(name, value)| (*name, value.as_str())),
            )
            .log_statements(tracing::log::LevelFilter::Debug);
        if let Some(password) = &options.password {
            connect = connect.password(&password.password().await?);
        }
        let connect_err = |source| match &options.password {
            Some(password) => Error::ConnectWith {
                url: redacted.clone(),
                with: password.name(),
                source,
            },
            None => connect_err(source),
        };
        // One direct connection first: it fails at once with the server's own reason (refused,
        // bad password, unknown database), where the pool would retry until its timeout.
        let probe = connect.connect().await.map_err(connect_err)?;
        let _ = sqlx::Connection::close(probe).await;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect)
            .await
            .map_err(connect_err)?;
        Ok(Self {
            pool,
            url: redacted,
            connection_url: url.to_string(),
            snapshot_holder: Mutex::new(None),
            snapshot: None,
            options: options.clone(),
            password_issued: std::sync::Mutex::new(Instant::now()),
        })
    }

    /// Gives the pool a fresh password for the connections it opens from now on, if the one
    /// it has is getting old (a [`PasswordSource`]'s).
    async fn renew_password(&self) -> Result<()> {
        let Some(source) = &self.options.password else {
            return Ok(());
        };
        let due = self
            .password_issued
            .lock()
            .map_or(true, |issued| issued.elapsed() >= PASSWORD_RENEWED_AFTER);
        if due {
            let password = source.password().await?;
            let options = (*self.pool.connect_options()).clone().password(&password);
            self.pool.set_connect_options(options);
            if let Ok(mut issued) = self.password_issued.lock() {
                *issued = Instant::now();
            }
        }
        Ok(())
    }

    /// The connection string for another library's connection (the tasks' Diesel lookups),
    /// with a fresh password from the source's [`PasswordSource`] if it has one. Never log it.
    pub async fn url_for_new_connection(&self) -> Result<String> {
        match &self.options.password {
            Some(source) => {
                let password = source.password().await?;
                with_password(&self.connection_url, &password).map_err(|reason| {
                    Error::NotSupported {
                        what: format!("{} for {}: {reason}", source.name(), self.url),
                    }
                })
            }
            None => Ok(self.connection_url.clone()),
        }
    }

    /// The connection string with its password replaced by `***`.
    pub fn display_url(&self) -> &str {
        &self.url
    }

    /// Opens the REPEATABLE READ, READ ONLY transaction whose snapshot every table of the run
    /// will read, so that all tables are consistent with each other.
    pub async fn export_snapshot(&mut self) -> Result<Snapshot> {
        let db = |source| Error::Database {
            context: "cannot export a snapshot",
            source,
        };
        // Before the snapshot, in a statement of its own (see `OpenTransactions`).
        let open_transactions =
            sqlx::query_as::<_, (i64, Option<i64>, Option<bool>)>(OPEN_TRANSACTIONS_SQL)
                .fetch_one(&self.pool)
                .await
                .map(
                    |(read_at_micros, oldest_start_micros, sees_all)| OpenTransactions {
                        read_at_micros,
                        oldest_start_micros,
                        sees_all_sessions: sees_all.unwrap_or(false),
                    },
                )
                .inspect_err(|e| tracing::warn!("cannot read pg_stat_activity: {e}"))
                .ok();
        self.renew_password().await?;
        let mut tx = self.pool.begin_with(BEGIN_READ).await.map_err(db)?;
        let (id, taken_at, xids): (String, String, String) = sqlx::query_as(
            "SELECT pg_export_snapshot(), to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), txid_current_snapshot()::text",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(db)?;
        let snapshot = Snapshot {
            id,
            taken_at,
            xids,
            open_transactions,
        };
        *self.snapshot_holder.lock().await = Some(tx);
        self.snapshot = Some(snapshot.clone());
        Ok(snapshot)
    }

    /// Connections the pool may open besides the snapshot's own: the most that can read one
    /// table at once.
    pub fn max_readers(&self) -> usize {
        (self.options.max_connections.max(2) - 1) as usize
    }

    /// Reads on `snapshot`, exported by another process (a sharded run's coordinator), which
    /// holds it: every transaction of this source imports it, and fails once its exporter is
    /// gone.
    pub fn import_snapshot(&mut self, snapshot: Snapshot) {
        self.snapshot = Some(snapshot);
    }

    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// A read-only transaction on the run's snapshot (or a fresh one if none was exported).
    pub async fn begin_read(&self) -> Result<Transaction<'static, Postgres>> {
        let db = |source| Error::Database {
            context: "cannot open a read transaction",
            source,
        };
        self.renew_password().await?;
        let mut tx = self.pool.begin_with(BEGIN_READ).await.map_err(db)?;
        if let Some(sql) = self.join_snapshot_sql() {
            sqlx::query(AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .map_err(db)?;
        }
        Ok(tx)
    }

    /// `SET TRANSACTION SNAPSHOT ...` for the run's snapshot, if one was exported.
    fn join_snapshot_sql(&self) -> Option<String> {
        // The id comes from pg_export_snapshot() (hex digits and dashes), never from input.
        self.snapshot
            .as_ref()
            .map(|s| format!("SET TRANSACTION SNAPSHOT '{}'", s.id.replace('\'', "")))
    }

    /// The statements that bring a session opened by another library (the tasks' Diesel
    /// connection) to where this source's sessions are: the same settings, then a read-only
    /// transaction on the run's snapshot.
    pub fn session_setup_sql(&self) -> Vec<String> {
        let mut sql: Vec<String> = self
            .options
            .session_settings()
            .iter()
            .map(|(name, value)| format!("SET {name} = '{}'", value.replace('\'', "''")))
            .collect();
        sql.push(BEGIN_READ.to_string());
        sql.extend(self.join_snapshot_sql());
        sql
    }

    /// Ends the snapshot transaction and closes the pool.
    pub async fn close(self) {
        if let Some(tx) = self.snapshot_holder.lock().await.take() {
            let _ = tx.rollback().await;
        }
        self.pool.close().await;
    }
}

/// The table's rows and each column's distinct values, by PostgreSQL's statistics (`pg_stats`,
/// kept by ANALYZE and autovacuum); empty for a table never analyzed, whose columns then all
/// keep a dictionary.
#[derive(Debug, Clone, Default)]
pub struct ColumnStatistics {
    pub rows: f64,
    /// Per column, its number of distinct values in the table.
    pub distinct_values: Vec<(String, f64)>,
}

impl ColumnStatistics {
    /// The columns whose values are expected to be mostly distinct among `rows` of the
    /// table's rows: more distinct values than half of them. Of a column with `n` values, each
    /// on `N / n` of the table's `N` rows, `rows` rows taken at random hold
    /// `n * (1 - (1 - rows / N) ^ (N / n))` distinct values on average: all `n` when `rows` is
    /// the whole table (PostgreSQL's "more than half as many distinct values as rows"), nearly
    /// `rows` when they are few against `n` (a column with many repeats across the table can
    /// be all but distinct within one partition's rows, where a dictionary only adds bytes).
    pub fn mostly_distinct(&self, rows: f64) -> impl Iterator<Item = &str> {
        let table_rows = self.rows;
        self.distinct_values
            .iter()
            .filter(move |(_, n)| {
                let expected = if rows >= table_rows {
                    n.min(rows)
                } else {
                    -n * ((table_rows / n) * (-rows / table_rows).ln_1p()).exp_m1()
                };
                *n > 0.0 && rows > 0.0 && expected > rows / 2.0
            })
            .map(|(column, _)| column.as_str())
    }
}

/// PostgreSQL's estimate of the table's rows (`pg_class.reltuples`, kept by ANALYZE and
/// VACUUM): a partitioned table's is its analyzed leaves' together, as autovacuum analyzes
/// leaves and never their parent. None for a table never analyzed.
pub async fn estimated_rows(
    tx: &mut Transaction<'static, Postgres>,
    info: &crate::model::TableInfo,
) -> Result<Option<f64>> {
    // reltuples is -1 for a table never analyzed (PostgreSQL >= 14).
    let rows: Option<Option<f64>> = sqlx::query_scalar(
        "SELECT coalesce( \
           CASE WHEN c.relkind = 'p' THEN \
             (SELECT sum(l.reltuples) FROM pg_partition_tree(c.oid) p \
              JOIN pg_class l ON l.oid = p.relid WHERE p.isleaf AND l.reltuples >= 0) END, \
           CASE WHEN c.reltuples >= 0 THEN c.reltuples END)::float8 \
         FROM pg_class c WHERE c.oid = to_regclass($1)",
    )
    .bind(info.qualified_sql())
    .fetch_optional(&mut **tx)
    .await
    .map_err(|source| Error::Database {
        context: "cannot read the table's estimated rows",
        source,
    })?;
    Ok(rows.flatten())
}

/// Each column's distinct values by the table's statistics, `rows` being its estimated rows
/// ([`estimated_rows`]); empty for a table never analyzed. A partitioned table's are its own
/// (`inherited`) if it was analyzed, else its leaves' combined (see [`LEAF_STATISTICS_SQL`]).
pub async fn column_statistics(
    tx: &mut Transaction<'static, Postgres>,
    info: &crate::model::TableInfo,
    rows: f64,
) -> Result<ColumnStatistics> {
    let statistics_err = |source| Error::Database {
        context: "cannot read the table's statistics",
        source,
    };
    // `n_distinct` is a count, or minus a fraction of the rows when ANALYZE expects the
    // values to grow with the table.
    let mut columns: Vec<(String, f64)> = sqlx::query_as(
        "SELECT DISTINCT ON (attname) attname::text, \
           (CASE WHEN n_distinct >= 0 THEN n_distinct ELSE -n_distinct * $3 END)::float8 \
         FROM pg_stats WHERE schemaname = $1 AND tablename = $2 \
         ORDER BY attname, inherited",
    )
    .bind(info.schema)
    .bind(info.name)
    .bind(rows)
    .fetch_all(&mut **tx)
    .await
    .map_err(statistics_err)?;
    if columns.is_empty() {
        columns = sqlx::query_as(LEAF_STATISTICS_SQL)
            .bind(info.qualified_sql())
            .fetch_all(&mut **tx)
            .await
            .map_err(statistics_err)?;
    }
    Ok(ColumnStatistics {
        rows,
        distinct_values: columns
            .into_iter()
            .filter(|(name, _)| info.columns.iter().any(|c| c.name == name))
            .collect(),
    })
}

/// A partitioned table's distinct values per column from its leaves' statistics, for a
/// parent never analyzed (autovacuum analyzes leaves only; without them, every column of such
/// a table would keep a dictionary it does not need, and cost CPU, memory and bytes for it).
/// A column whose every leaf expects values to grow with its rows (negative `n_distinct`)
/// has the leaves' values together; otherwise leaves may share their values, and the
/// largest leaf's count is taken (a lower bound: a dictionary is kept when in doubt).
/// Nothing for a table that is not partitioned.
const LEAF_STATISTICS_SQL: &str = "WITH leaves AS ( \
       SELECT n.nspname, c.relname, greatest(c.reltuples, 0) AS rows \
       FROM pg_partition_tree(to_regclass($1)) p JOIN pg_class c ON c.oid = p.relid \
       JOIN pg_namespace n ON n.oid = c.relnamespace WHERE p.isleaf) \
     SELECT s.attname::text, (CASE WHEN bool_and(s.n_distinct < 0) \
         THEN sum(-s.n_distinct * l.rows) \
         ELSE max(CASE WHEN s.n_distinct >= 0 THEN s.n_distinct \
                  ELSE -s.n_distinct * l.rows END) END)::float8 \
     FROM pg_stats s JOIN leaves l ON s.schemaname = l.nspname AND s.tablename = l.relname \
     WHERE NOT s.inherited GROUP BY s.attname";

/// A connection URL around its authority: `scheme://`, the user information before `@` (if
/// any), the host and port, and the rest (path and query). The one reading of a URL's user
/// and password, for redaction and for passwords set from a file or a token.
struct UrlAuthority<'a> {
    head: &'a str,
    userinfo: Option<&'a str>,
    host: &'a str,
    tail: &'a str,
}

impl<'a> UrlAuthority<'a> {
    fn parse(url: &'a str) -> Option<Self> {
        let rest_start = url.find("://")? + 3;
        let authority_end = url[rest_start..]
            .find(['/', '?'])
            .map_or(url.len(), |i| rest_start + i);
        let authority = &url[rest_start..authority_end];
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((userinfo, host)) => (Some(userinfo), host),
            None => (None, authority),
        };
        Some(Self {
            head: &url[..rest_start],
            userinfo,
            host,
            tail: &url[authority_end..],
        })
    }

    fn user(&self) -> Option<&'a str> {
        self.userinfo
            .map(|u| u.split_once(':').map_or(u, |(user, _)| user))
    }

    fn password(&self) -> Option<&'a str> {
        self.userinfo?.split_once(':').map(|(_, password)| password)
    }
}

/// The password written in a `postgres://user:password@host/db` URL, if it has one.
pub fn url_password(url: &str) -> Option<&str> {
    UrlAuthority::parse(url)?.password()
}

/// `url` (`postgres://user@host/db...`) with `password`, percent-encoded, after its user name.
pub fn with_password(url: &str, password: &str) -> std::result::Result<String, String> {
    let parts = UrlAuthority::parse(url).ok_or("a password needs a postgres://user@host/db URL")?;
    let user = parts
        .user()
        .ok_or("a password needs a user in the URL (postgres://user@host/db)")?;
    Ok(format!(
        "{}{user}:{}@{}{}",
        parts.head,
        percent_encode(password),
        parts.host,
        parts.tail
    ))
}

/// `text` percent-encoded for a URL: RFC 3986's unreserved characters stay, every other byte
/// is `%XX`.
pub(crate) fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `url` with its password (in the authority, or a `password=` parameter) shown as `***`.
pub fn redact_url(url: &str) -> String {
    let Some(parts) = UrlAuthority::parse(url) else {
        return redact_password_params(url, ' ');
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(parts.head);
    if let Some(userinfo) = parts.userinfo {
        match (parts.user(), parts.password()) {
            (Some(user), Some(_)) => {
                out.push_str(user);
                out.push_str(":***");
            }
            _ => out.push_str(userinfo),
        }
        out.push('@');
    }
    out.push_str(parts.host);
    match parts.tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            out.push_str(&redact_password_params(query, '&'));
        }
        None => out.push_str(parts.tail),
    }
    out
}

fn redact_password_params(s: &str, separator: char) -> String {
    s.split(separator)
        .map(|part| match part.split_once('=') {
            Some((key, _)) if key.trim().eq_ignore_ascii_case("password") => format!("{key}=***"),
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(&separator.to_string())
}

#[cfg(test)]
mod tests {
    use super::{ColumnStatistics, redact_url};

    #[test]
    fn columns_are_mostly_distinct_by_the_rows_they_are_among() {
        // A table of 5M rows in ~1,000 day partitions of ~5,000 rows.
        let statistics = ColumnStatistics {
            rows: 5e6,
            distinct_values: vec![
                ("id".into(), 5e6),
                ("weight_kg".into(), 0.28 * 5e6),
                ("carrier_id".into(), 9.0),
                ("half".into(), 2.5e6 + 1.0),
            ],
        };
        let distinct = |rows: f64| statistics.mostly_distinct(rows).collect::<Vec<_>>();
        // The whole table: more than half as many values as rows.
        assert_eq!(distinct(5e6), ["id", "half"]);
        // A row group of 1M rows: weight_kg's 1.4M values give ~0.77M distinct ones.
        assert_eq!(distinct(1e6), ["id", "weight_kg", "half"]);
        // A partition's few rows.
        assert_eq!(distinct(5000.0), ["id", "weight_kg", "half"]);
        assert_eq!(distinct(0.0), Vec::<&str>::new());
        // Without statistics (never analyzed), nothing is.
        assert_eq!(ColumnStatistics::default().mostly_distinct(1e6).count(), 0);
    }

    #[test]
    fn passwords_never_survive_redaction() {
        assert_eq!(
            redact_url("postgres://etl:s3cret@db:5432/prod?sslmode=verify-full"),
            "postgres://etl:***@db:5432/prod?sslmode=verify-full"
        );
        assert_eq!(
            redact_url("postgresql://etl@db/prod?password=s3cret&sslmode=require"),
            "postgresql://etl@db/prod?password=***&sslmode=require"
        );
        assert_eq!(
            redact_url("host=db user=etl password=s3cret dbname=prod"),
            "host=db user=etl password=*** dbname=prod"
        );
        assert_eq!(redact_url("postgres://db/prod"), "postgres://db/prod");
    }
}
