//! Identity partition keys of every kind a model may take (boolean, smallint, integer, bigint,
//! text) read back by every reader as it reads a Hive layout: pyarrow and DuckDB told the
//! keys' types, both with their defaults (`pq.read_table(dir)`, `hive_partitioning = true`),
//! and Spark's partition discovery. A key's column is in the directory names only, as Hive,
//! Spark and DuckDB write it: with the column also inside the files, pyarrow's default read
//! refused the table ("Unable to merge: Field express has incompatible types: bool vs ...").

use std::path::Path;

use etl_runtime::EtlTable;

use crate::common;

const PARCELS: &str = r#"
CREATE TABLE parcels (
    id bigint PRIMARY KEY,
    express boolean,
    zone smallint NOT NULL,
    depot integer,
    route bigint NOT NULL,
    region text,
    sent_on date NOT NULL,
    weight numeric(8,2) NOT NULL
);
INSERT INTO parcels
SELECT i,
       CASE WHEN i % 97 = 0 THEN NULL ELSE i % 3 = 0 END,
       i % 2,
       CASE WHEN i % 89 = 0 THEN NULL ELSE 100 + i % 2 END,
       3000000000 + i % 2,
       CASE i % 4 WHEN 0 THEN 'north' WHEN 1 THEN 'south/east' WHEN 2 THEN 'west' END,
       date '2024-02-27' + i % 5,
       i * 0.25
FROM generate_series(1, 3000) i;
"#;

#[derive(Debug, EtlTable)]
#[etl(
    table = "parcels",
    primary_key(id),
    partition_by = "express, zone, depot, route, region, sent_on:day"
)]
pub struct Parcel {
    pub id: i64,
    pub express: Option<bool>,
    pub zone: i16,
    pub depot: Option<i32>,
    pub route: i64,
    pub region: Option<String>,
    pub sent_on: chrono::NaiveDate,
    #[etl(sql_type = "numeric(8,2)")]
    pub weight: bigdecimal::BigDecimal,
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_keys_of_every_type_read_back_with_every_reader() {
    let db = common::database("partition_readers", PARCELS);
    let out = common::out_dir(&db.name);
    let report = common::export::<Parcel>(&db, &out).await.expect("export");
    assert_eq!(report.rows, 3000);
    let table = out.join("parcels");
    // Booleans as Hive writes them; NULL in Hive's default partition; `/` escaped.
    let first = table.join(
        "express=false/zone=0/depot=100/route=3000000000/region=north/sent_on_day=2024-02-28",
    );
    assert!(first.is_dir(), "{:?}", report.partitions);
    assert!(
        report.partitions.iter().any(
            |p| p.path.starts_with("express=__HIVE_DEFAULT_PARTITION__/")
                && p.path.contains("region=south%2Feast")
        ),
        "{:?}",
        report.partitions
    );
    assert!(
        !report
            .partitions
            .iter()
            .any(|p| p.path.contains("express=1"))
    );
    // The identity keys' columns are not in the files; the derived key's source column is.
    let columns = file_columns(&first);
    assert_eq!(columns, ["id", "sent_on", "weight"], "{columns:?}");

    common::assert_readers_agree(&db, &out, &["parcels"]);
    if let Err(e) = etl_tests::python::spark_equals_postgres(&db.url, &out, &["parcels:id"]) {
        panic!("{e}");
    }
}

/// The column names of the one Parquet file in `dir`, as pyarrow reads its footer.
fn file_columns(dir: &Path) -> Vec<String> {
    let python = etl_tests::python::python().expect("python");
    let output = std::process::Command::new(python)
        .args([
            "-c",
            "import glob, sys, pyarrow.parquet as pq\n\
             [path] = glob.glob(sys.argv[1] + '/*.parquet')\n\
             print(','.join(pq.ParquetFile(path).schema_arrow.names))",
        ])
        .arg(dir)
        .output()
        .expect("python");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .split(',')
        .map(str::to_string)
        .collect()
}
