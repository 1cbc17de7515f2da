//! The AWS Glue Data Catalog, after every upload of a run has succeeded: table definitions
//! written directly from the models' Arrow schemas (exact types, so Athena needs no crawler to
//! guess them), and/or a crawler pointed at the exported prefixes and started.

use std::time::Duration;

use arrow_schema::{DataType, Schema};
use aws_sdk_glue::Client;
use aws_sdk_glue::types::{
    BatchUpdatePartitionRequestEntry, Column, CrawlerState, DatabaseInput, PartitionInput,
    PartitionValueList, S3Target, SerDeInfo, StorageDescriptor, TableInput,
};

use crate::error::{Error, Result};
use crate::model::PartitionKey;
use crate::write::partition::{NULL_PARTITION, Partition, hive_escape};

/// How Athena finds a partitioned table's partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartitionDiscovery {
    /// Partition projection, written on the table: no crawler, no MSCK REPAIR, no partition
    /// objects (Athena only).
    #[default]
    Projection,
    /// Every partition registered through BatchCreatePartition (engines without projection).
    Register,
}

/// A table's partitioning, for its Glue definition.
#[derive(Debug, Clone, Copy)]
pub struct GluePartitions<'a> {
    pub keys: &'a [PartitionKey],
    /// The partitions the export wrote.
    pub partitions: &'a [Partition],
    pub discovery: PartitionDiscovery,
}

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
/// Parquet files at `location` with `schema`; a partitioned table gets its partition keys and
/// either projection parameters or its partitions registered. Returns warnings for the user
/// (partitions projection cannot reach).
pub async fn put_table(
    client: &Client,
    database: &str,
    table: &str,
    location: &str,
    schema: &Schema,
    partitioning: Option<GluePartitions<'_>>,
) -> Result<Vec<String>> {
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
    let keys = partitioning.map_or(&[][..], |p| p.keys);
    let column = |name: &str, data_type: String| {
        Column::builder()
            .name(name.to_lowercase())
            .r#type(data_type)
            .build()
            .map_err(|e| glue_error("describe a column of", table, e))
    };
    let columns = schema
        .fields()
        .iter()
        .enumerate()
        // An identity key's column is in the directory names only (`layout::partition`): a
        // partition column, not a data column (Glue and Athena refuse a name that is both).
        .filter(|(i, _)| crate::layout::partition::in_files(keys, *i))
        .map(|(_, f)| column(f.name(), glue_type(f.data_type())))
        .collect::<Result<Vec<_>>>()?;
    let partition_columns = keys
        .iter()
        .map(|k| match k.transform.granularity() {
            None => column(k.name, glue_type(schema.field(k.column).data_type())),
            // Text in the format of the directory (`2024-01-31`), as projection reads it.
            Some(_) => column(k.name, "string".into()),
        })
        .collect::<Result<Vec<_>>>()?;
    let location = if location.ends_with('/') {
        location.to_string()
    } else {
        format!("{location}/")
    };
    let descriptor = |location: &str| {
        StorageDescriptor::builder()
            .set_columns(Some(columns.clone()))
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
            .build()
    };
    let mut input = TableInput::builder()
        .name(table)
        .table_type("EXTERNAL_TABLE")
        .parameters("classification", "parquet")
        .storage_descriptor(descriptor(&location));
    let mut warnings = Vec::new();
    if let Some(partitioning) = partitioning {
        input = input.set_partition_keys(Some(partition_columns));
        if partitioning.discovery == PartitionDiscovery::Projection {
            let (parameters, unreachable) = projection(&partitioning, &location, schema);
            for (key, value) in parameters {
                input = input.parameters(key, value);
            }
            warnings.extend(unreachable);
        }
    }
    let input = input
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
    if let Some(partitioning) = partitioning
        && partitioning.discovery == PartitionDiscovery::Register
    {
        let inputs = partitioning
            .partitions
            .iter()
            .map(|p| {
                let values = p
                    .values
                    .iter()
                    .map(|v| v.clone().unwrap_or_else(|| NULL_PARTITION.to_string()))
                    .collect::<Vec<_>>();
                let input = PartitionInput::builder()
                    .set_values(Some(values.clone()))
                    .storage_descriptor(descriptor(&format!("{location}{}/", p.path)))
                    .build();
                (values, input)
            })
            .collect::<Vec<_>>();
        register_partitions(client, database, table, inputs).await?;
    }
    Ok(warnings)
}

/// Athena's partition projection parameters for `partitioning` at `location`, and a warning
/// for each kind of partition projection cannot reach.
fn projection(
    partitioning: &GluePartitions<'_>,
    location: &str,
    schema: &Schema,
) -> (Vec<(String, String)>, Vec<String>) {
    let mut parameters = vec![("projection.enabled".to_string(), "true".to_string())];
    let mut warnings = Vec::new();
    let mut template = location.to_string();
    for (i, key) in partitioning.keys.iter().enumerate() {
        let name = key.name.to_lowercase();
        let values: Vec<&str> = partitioning
            .partitions
            .iter()
            .filter_map(|p| p.values.get(i).and_then(|v| v.as_deref()))
            .collect();
        if partitioning
            .partitions
            .iter()
            .any(|p| p.values.get(i).is_some_and(Option::is_none))
        {
            warnings.push(format!(
                "partition projection cannot reach the rows whose {name} is NULL ({NULL_PARTITION}); \
                 use --glue-partitions register to see them in Athena"
            ));
        }
        let mut set = |suffix: &str, value: String| {
            parameters.push((format!("projection.{name}.{suffix}"), value));
        };
        match key.transform.granularity() {
            Some(granularity) => {
                let (format, unit) = match granularity {
                    "year" => ("yyyy", "YEARS"),
                    "month" => ("yyyy-MM", "MONTHS"),
                    _ => ("yyyy-MM-dd", "DAYS"),
                };
                // From the data's first partition to whatever day the query runs on.
                let first = values.iter().min().copied().unwrap_or("1970-01-01");
                set("type", "date".into());
                set("format", format.into());
                set("range", format!("{first},NOW"));
                set("interval", "1".into());
                set("interval.unit", unit.into());
            }
            None if schema.field(key.column).data_type().is_integer() => {
                let numbers: Vec<i64> = values.iter().filter_map(|v| v.parse().ok()).collect();
                let min = numbers.iter().min().copied().unwrap_or(0);
                let max = numbers.iter().max().copied().unwrap_or(0);
                set("type", "integer".into());
                set("range", format!("{min},{max}"));
            }
            None => {
                let mut distinct: Vec<&str> = values.clone();
                distinct.sort_unstable();
                distinct.dedup();
                if distinct
                    .iter()
                    .any(|v| hive_escape(v) != *v || v.contains(','))
                {
                    warnings.push(format!(
                        "partition projection cannot reach {name} values that Hive escapes in \
                         paths or that hold commas; use --glue-partitions register"
                    ));
                }
                set("type", "enum".into());
                set("values", distinct.join(","));
            }
        }
        template.push_str(&format!("{name}=${{{name}}}/"));
    }
    parameters.push(("storage.location.template".into(), template));
    (parameters, warnings)
}

/// Makes the table's registered partitions exactly `partitions`: new ones created, existing
/// ones pointed at the new version, gone ones deleted (100 per request, Glue's limit).
async fn register_partitions(
    client: &Client,
    database: &str,
    table: &str,
    partitions: Vec<(Vec<String>, PartitionInput)>,
) -> Result<()> {
    let mut existing: Vec<Vec<String>> = Vec::new();
    let mut pages = client
        .get_partitions()
        .database_name(database)
        .table_name(table)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| glue_error("list the partitions of", table, e))?;
        existing.extend(page.partitions().iter().map(|p| p.values().to_vec()));
    }
    let (update, create): (Vec<_>, Vec<_>) = partitions
        .into_iter()
        .partition(|(values, _)| existing.contains(values));
    for chunk in create.chunks(100) {
        let created = client
            .batch_create_partition()
            .database_name(database)
            .table_name(table)
            .set_partition_input_list(Some(chunk.iter().map(|(_, p)| p.clone()).collect()))
            .send()
            .await
            .map_err(|e| glue_error("register the partitions of", table, e))?;
        if let Some(error) = created.errors().first() {
            return Err(Error::Glue {
                action: "register a partition of",
                name: table.to_string(),
                source: format!("{:?}", error.error_detail()).into(),
            });
        }
    }
    for chunk in update.chunks(100) {
        let entries = chunk
            .iter()
            .map(|(values, input)| {
                BatchUpdatePartitionRequestEntry::builder()
                    .set_partition_value_list(Some(values.clone()))
                    .partition_input(input.clone())
                    .build()
                    .map_err(|e| glue_error("describe a partition of", table, e))
            })
            .collect::<Result<Vec<_>>>()?;
        let updated = client
            .batch_update_partition()
            .database_name(database)
            .table_name(table)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| glue_error("update the partitions of", table, e))?;
        if let Some(error) = updated.errors().first() {
            return Err(Error::Glue {
                action: "update a partition of",
                name: table.to_string(),
                source: format!("{:?}", error.error_detail()).into(),
            });
        }
    }
    let wanted: Vec<&Vec<String>> = update.iter().chain(&create).map(|(v, _)| v).collect();
    let gone: Vec<PartitionValueList> = existing
        .iter()
        .filter(|values| !wanted.contains(values))
        .filter_map(|values| {
            PartitionValueList::builder()
                .set_values(Some(values.clone()))
                .build()
                .ok()
        })
        .collect();
    for chunk in gone.chunks(25) {
        client
            .batch_delete_partition()
            .database_name(database)
            .table_name(table)
            .set_partitions_to_delete(Some(chunk.to_vec()))
            .send()
            .await
            .map_err(|e| glue_error("remove old partitions of", table, e))?;
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
