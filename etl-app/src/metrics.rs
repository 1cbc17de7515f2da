//! Metrics the Prometheus way for batch jobs: pushed once at the end of a run, failed or not, to
//! a Pushgateway (`--pushgateway`), or written for node-exporter's textfile collector
//! (`--metrics-file`). Per table: rows, bytes, duration and success; and
//! `etl_last_success_timestamp_seconds` only when the table was published, so that an alert on
//! its age fires when a table stops being exported. Pushes use POST, which keeps the group's
//! other metrics: a failed run leaves the last success time in place.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One table's (or task's) outcome in a run.
#[derive(Debug, Clone)]
pub struct TableMetrics {
    pub table: String,
    pub rows: u64,
    /// Deletions among the rows (a table with a cursor: keys gone since the run before).
    pub deleted_rows: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub success: bool,
}

/// A family's value for a table at a time, if it has one.
type Sample = fn(&TableMetrics, f64) -> Option<f64>;

/// The metric families, in the text exposition format. `labels` adds `job` and `table` labels
/// to every sample (a textfile); a push leaves them to the group's URL.
pub fn exposition(job: &str, tables: &[TableMetrics], labels: bool) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64();
    let families: [(&str, &str, Sample); 6] = [
        (
            "etl_table_rows",
            "Rows exported in the last run.",
            |t, _| Some(t.rows as f64),
        ),
        (
            "etl_table_deleted_rows",
            "Deletions among the rows of the last run: keys gone since the run before.",
            |t, _| Some(t.deleted_rows as f64),
        ),
        (
            "etl_table_bytes",
            "Parquet bytes written in the last run.",
            |t, _| Some(t.bytes as f64),
        ),
        (
            "etl_table_duration_seconds",
            "Seconds the table took in the last run.",
            |t, _| Some(t.seconds),
        ),
        (
            "etl_table_success",
            "1 if the last run published the table, 0 if it failed or was stopped.",
            |t, _| Some(if t.success { 1.0 } else { 0.0 }),
        ),
        (
            "etl_last_success_timestamp_seconds",
            "When the table was last published (Unix time).",
            |t, now| t.success.then_some(now),
        ),
    ];
    let mut out = String::new();
    for (name, help, value) in families {
        let samples: Vec<(&TableMetrics, f64)> = tables
            .iter()
            .filter_map(|t| value(t, now).map(|v| (t, v)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (table, value) in samples {
            if labels {
                let _ = writeln!(
                    out,
                    "{name}{{job=\"{}\",table=\"{}\"}} {value}",
                    escape(job),
                    escape(&table.table)
                );
            } else {
                let _ = writeln!(out, "{name} {value}");
            }
        }
    }
    out
}

/// A label value in the text format: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Pushes each table's metrics to the Pushgateway at `url` (`http://host:port`), grouped by
/// job and table.
pub async fn push(url: &str, job: &str, tables: &[TableMetrics]) -> Result<()> {
    let endpoint = HttpEndpoint::parse(url)?;
    for table in tables {
        // Any table name is safe in a path once base64url-encoded (the Pushgateway's `@base64`).
        let path = format!(
            "{}/metrics/job@base64/{}/table@base64/{}",
            endpoint.base,
            base64url(job),
            base64url(&table.table)
        );
        let body = exposition(job, std::slice::from_ref(table), false);
        endpoint
            .post(&path, &body)
            .await
            .with_context(|| format!("cannot push the metrics of {} to {url}", table.table))?;
    }
    Ok(())
}

/// Writes the metrics for node-exporter's textfile collector, whole or not at all.
pub fn write_file(path: &std::path::Path, job: &str, tables: &[TableMetrics]) -> Result<()> {
    let text = exposition(job, tables, true);
    etl_runtime::sink::write_whole(path, text.as_bytes())
        .map_err(|e| anyhow::anyhow!(etl_runtime::error::report(&e)))
}

/// Whether `url` is one [`push`] can use: `http://host[:port][/base]`.
pub fn check_url(url: &str) -> Result<()> {
    HttpEndpoint::parse(url).map(|_| ())
}

/// `http://host:port/base`: where the Pushgateway listens.
struct HttpEndpoint {
    host: String,
    port: u16,
    base: String,
}

impl HttpEndpoint {
    fn parse(url: &str) -> Result<Self> {
        let Some(rest) = url.strip_prefix("http://") else {
            bail!("`{url}` is not an http:// URL");
        };
        let (authority, base) = rest.split_once('/').unwrap_or((rest, ""));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (
                host,
                port.parse()
                    .with_context(|| format!("`{url}`: `{port}` is not a port"))?,
            ),
            None => (authority, 80),
        };
        if host.is_empty() {
            bail!("`{url}` names no host");
        }
        let base = base.trim_end_matches('/');
        Ok(Self {
            host: host.to_string(),
            port,
            base: if base.is_empty() {
                String::new()
            } else {
                format!("/{base}")
            },
        })
    }

    /// One HTTP/1.0 POST (no keep-alive, no chunking); an error unless the answer is 2xx.
    async fn post(&self, path: &str, body: &str) -> Result<()> {
        let exchange = async {
            let mut stream = TcpStream::connect((self.host.as_str(), self.port)).await?;
            let request = format!(
                "POST {path} HTTP/1.0\r\nHost: {}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                self.host,
                body.len()
            );
            stream.write_all(request.as_bytes()).await?;
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await?;
            Ok::<_, std::io::Error>(response)
        };
        let response = tokio::time::timeout(Duration::from_secs(30), exchange)
            .await
            .context("no answer within 30 s")??;
        let response = String::from_utf8_lossy(&response);
        let status = response.lines().next().unwrap_or_default();
        let code = status.split_whitespace().nth(1).unwrap_or_default();
        if !code.starts_with('2') {
            let detail = response
                .split_once("\r\n\r\n")
                .map_or("", |(_, b)| b)
                .trim();
            bail!("the Pushgateway answered `{status}`: {detail}");
        }
        Ok(())
    }
}

/// Base64 with the URL-safe alphabet and padding, as the Pushgateway reads `@base64` values.
fn base64url(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_the_standard() {
        assert_eq!(base64url(""), "");
        assert_eq!(base64url("f"), "Zg==");
        assert_eq!(base64url("fo"), "Zm8=");
        assert_eq!(base64url("foo"), "Zm9v");
        assert_eq!(base64url("sales.orders"), "c2FsZXMub3JkZXJz");
        assert_eq!(base64url("\u{fb}\u{ff}"), "w7vDvw==");
        assert_eq!(base64url("??>"), "Pz8-");
    }

    #[test]
    fn urls_are_read_or_refused() {
        let e = HttpEndpoint::parse("http://pgw.monitoring:9091/prefix/").expect("url");
        assert_eq!(
            (e.host.as_str(), e.port, e.base.as_str()),
            ("pgw.monitoring", 9091, "/prefix")
        );
        assert!(HttpEndpoint::parse("https://pgw:9091").is_err());
        assert!(HttpEndpoint::parse("http://:9091").is_err());
    }
}
