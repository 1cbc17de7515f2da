//! Spark, a JVM engine like the Athena/Trino and EMR readers of these files, reads every
//! output shape back equal to PostgreSQL: a plain table of every mapped type, Hive partitions,
//! an incremental table's full export with its batches (latest version per key), and a table
//! published from shards.

use crate::common::{demo_database, etl_app, out_dir, text};

#[test]
fn spark_reads_every_output_shape_equal_to_postgres() {
    let db = demo_database("spark");
    let out = out_dir("spark");
    let run = |args: &[&str]| {
        let output = etl_app()
            .args(["run", "--output"])
            .arg(&out)
            .args(args)
            .env("DATABASE_URL", &db.url)
            .output()
            .expect("etl-demo");
        assert!(output.status.success(), "{}", text(&output));
    };
    run(&["--tables", "shipments,accounts"]);
    // A batch of changed rows and deletions beside the full export, read with the README's
    // Spark query (each key's latest version, unless it is a deletion).
    etl_tests::postgres::psql(
        &db.url,
        "UPDATE accounts SET balance = balance + 1 WHERE id % 10 = 0; \
         INSERT INTO accounts (id, owner, balance) VALUES (100001, 'late', 0.01); \
         DELETE FROM accounts WHERE id % 97 = 0",
    )
    .expect("changes");
    run(&["--tables", "accounts"]);

    // purchase_orders (every mapped type) published from two shards.
    let coordinator = etl_app()
        .args([
            "coordinate",
            "--tables",
            "purchase_orders",
            "--range-pages",
            "8",
        ])
        .args(["--shards", "2", "--run-name", "spark-1", "--output"])
        .arg(&out)
        .env("DATABASE_URL", &db.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("coordinator");
    for index in ["0", "1"] {
        let output = etl_app()
            .args([
                "shard",
                "--run-name",
                "spark-1",
                "--shard",
                index,
                "--output",
            ])
            .arg(&out)
            .env("DATABASE_URL", &db.url)
            .output()
            .expect("shard");
        assert!(output.status.success(), "shard {index}: {}", text(&output));
    }
    let output = coordinator.wait_with_output().expect("coordinator");
    assert!(output.status.success(), "{}", text(&output));

    let report = etl_tests::python::spark_equals_postgres(
        &db.url,
        &out,
        &[
            "purchase_orders:id",
            "shipments:id",
            "accounts:id:updated_at",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for table in ["purchase_orders", "shipments", "accounts"] {
        assert!(report.contains(&format!("spark {table}: ")), "{report}");
    }
}
