//! The AWS Glue Data Catalog, after every upload of a run has succeeded: table definitions
//! written directly from the models' Arrow schemas (exact types, so Athena needs no crawler to
//! guess them), and/or a crawler pointed at the exported prefixes and started.

use std::time::Duration;

use arrow_schema::{DataType, Schema};
use aws_sdk_glue::Client;
use aws_sdk_glue::types::{
    Column, CrawlerState, DatabaseInput, S3Target, SerDeInfo, StorageDescriptor, TableInput,
};

use crate::error::{Error, Result};

/// A Glue client from aws-config's default chain (`AWS_ENDPOINT_URL` works for local stand-ins).
pub async fn client() -> Client {
    let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    Client::new(&shared)
}

fn glue_error(
    action: &'static str,
    name: &str,
    e: impl std::error::Error + Send + Sync + 'static,
) -> Error {
    Error::Glue {
        action,
        name: name.to_string(),
        source: Box::new(e),
    }
}

/// The Hive/Athena type of an Arrow type, as the Parquet files hold it.
pub fn glue_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "boolean".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        DataType::Binary | DataType::FixedSizeBinary(_) => "binary".into(),
        DataType::List(field) => format!("array<{}>", glue_type(field.data_type())),
        // Text, JSON text, and TIME (which Athena has no type for: read as its microseconds).
        DataType::Time64(_) => "bigint".into(),
        _ => "string".into(),
    }
}

/// Creates the database if needed, then creates or replaces the definition of `table` as the
/// Parquet files at `location` with `schema`.
pub async fn put_table(
    client: &Client,
    database: &str,
    table: &str,
    location: &str,
    schema: &Schema,
) -> Result<()> {
    let exists = client.get_database().name(database).send().await;
    if let Err(e) = exists {
        if e.as_service_error()
            .is_some_and(|s| s.is_entity_not_found_exception())
        {
            client
                .create_database()
                .database_input(
                    DatabaseInput::builder()
                        .name(database)
                        .build()
                        .map_err(|e| glue_error("describe database", database, e))?,
                )
                .send()
                .await
                .map_err(|e| glue_error("create database", database, e))?;
        } else {
            return Err(glue_error("read database", database, e));
        }
    }
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            Column::builder()
                .name(f.name().to_lowercase())
                .r#type(glue_type(f.data_type()))
                .build()
                .map_err(|e| glue_error("describe a column of", table, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let location = if location.ends_with('/') {
        location.to_string()
    } else {
        format!("{location}/")
    };
    let input = TableInput::builder()
        .name(table)
        .table_type("EXTERNAL_TABLE")
        .parameters("classification", "parquet")
        .storage_descriptor(
            StorageDescriptor::builder()
                .set_columns(Some(columns))
                .location(location)
                .input_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat")
                .output_format("org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat")
                .serde_info(
                    SerDeInfo::builder()
                        .serialization_library(
                            "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                        )
                        .build(),
                )
                .build(),
        )
        .build()
        .map_err(|e| glue_error("describe table", table, e))?;
    let existing = client
        .get_table()
        .database_name(database)
        .name(table)
        .send()
        .await;
    match existing {
        Ok(_) => {
            client
                .update_table()
                .database_name(database)
                .table_input(input)
                .send()
                .await
                .map_err(|e| glue_error("update table", table, e))?;
        }
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_entity_not_found_exception()) =>
        {
            client
                .create_table()
                .database_name(database)
                .table_input(input)
                .send()
                .await
                .map_err(|e| glue_error("create table", table, e))?;
        }
        Err(e) => return Err(glue_error("read table", table, e)),
    }
    Ok(())
}

/// How a crawl ended.
#[derive(Debug, Clone)]
pub struct CrawlOutcome {
    /// The last crawl's status and error, when the run waited for it (`SUCCEEDED`).
    pub last_crawl: Option<String>,
}

/// Points `crawler` at `paths` (when they differ from its targets) and starts it; with `wait`,
/// polls until it is ready again and reports its last crawl.
pub async fn run_crawler(
    client: &Client,
    crawler: &str,
    paths: &[String],
    wait: Option<Duration>,
) -> Result<CrawlOutcome> {
    let current = client
        .get_crawler()
        .name(crawler)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_entity_not_found_exception() => Error::Glue {
                action: "find crawler",
                name: crawler.to_string(),
                source: "no crawler of that name; create it (with an IAM role that reads the bucket) or use --glue-database".into(),
            },
            _ => glue_error("read crawler", crawler, e),
        })?;
    let targets: Vec<String> = current
        .crawler()
        .and_then(|c| c.targets())
        .map(|t| {
            t.s3_targets()
                .iter()
                .filter_map(|s| s.path().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut wanted: Vec<String> = paths.to_vec();
    wanted.sort();
    let mut have = targets.clone();
    have.sort();
    if have != wanted {
        let s3_targets = paths
            .iter()
            .map(|p| S3Target::builder().path(p).build())
            .collect();
        client
            .update_crawler()
            .name(crawler)
            .targets(
                aws_sdk_glue::types::CrawlerTargets::builder()
                    .set_s3_targets(Some(s3_targets))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| glue_error("point the targets of crawler", crawler, e))?;
    }
    client
        .start_crawler()
        .name(crawler)
        .send()
        .await
        .map_err(|e| match e.as_service_error() {
            Some(s) if s.is_crawler_running_exception() => Error::Glue {
                action: "start crawler",
                name: crawler.to_string(),
                source: "it is already running; the new files will be seen by its next run".into(),
            },
            _ => glue_error("start crawler", crawler, e),
        })?;
    let Some(timeout) = wait else {
        return Ok(CrawlOutcome { last_crawl: None });
    };
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let now = client
            .get_crawler()
            .name(crawler)
            .send()
            .await
            .map_err(|e| glue_error("read crawler", crawler, e))?;
        let info = now.crawler();
        let state = info.and_then(|c| c.state()).cloned();
        if state == Some(CrawlerState::Ready) {
            let last = info.and_then(|c| c.last_crawl());
            return Ok(CrawlOutcome {
                last_crawl: last.map(|l| {
                    format!(
                        "{}{}",
                        l.status().map(|s| s.as_str()).unwrap_or("unknown"),
                        l.error_message()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    )
                }),
            });
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Glue {
                action: "wait for crawler",
                name: crawler.to_string(),
                source: format!("still {state:?} after {} s", timeout.as_secs()).into(),
            });
        }
        // Polling a remote state machine: Glue offers no notification to wait on.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
