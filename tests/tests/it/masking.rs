//! Masked columns: what leaves the database host is HMAC-SHA256(key, the value's text), in
//! every file (data, key files, deletions), equal to what PostgreSQL's pgcrypto computes under
//! the same key, the same in every table and run, other under another key; a masked primary
//! key still carries an incremental table's state and its deletions.

use std::path::Path;

use chrono::{DateTime, Utc};
use etl_runtime::run::export::ExportOptions;
use etl_runtime::source::SourceOptions;
use etl_runtime::write::{Codec, ParquetOptions};
use etl_runtime::{EtlTable, LocalDirSink, MaskKey, PgSource, TableReport};

use crate::common;

const KEY_A: &str = "test-mask-key-a-0123456789abcdef";
const KEY_B: &str = "test-mask-key-b-0123456789abcdef";

const SCHEMA: &str = r#"
CREATE EXTENSION pgcrypto;
CREATE TABLE customers (
    email      text        PRIMARY KEY,
    phone      text,
    visits     integer     NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (email, phone, visits)
SELECT 'user' || i || '@example.com',
       CASE WHEN i % 7 = 0 THEN NULL ELSE '+44 7700 ' || lpad(i::text, 6, '0') END,
       i % 50
FROM generate_series(1, 2000) i;
CREATE TABLE orders (
    id             bigint  PRIMARY KEY,
    customer_email text    NOT NULL,
    amount_cents   integer NOT NULL
);
INSERT INTO orders SELECT i, 'user' || (1 + i % 2000) || '@example.com', i % 1000
FROM generate_series(1, 5000) i;
-- The oracle: the same HMAC, computed by PostgreSQL.
CREATE FUNCTION mask(value text, key text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT encode(hmac(value, key, 'sha256'), 'hex') $$;
CREATE VIEW customers_masked AS
    SELECT mask(email, 'test-mask-key-a-0123456789abcdef') AS email,
           mask(phone, 'test-mask-key-a-0123456789abcdef') AS phone,
           mask(visits::text, 'test-mask-key-a-0123456789abcdef') AS visits,
           updated_at
    FROM customers;
"#;

#[derive(Debug, EtlTable)]
#[etl(table = "customers", primary_key(email), cursor = "updated_at")]
pub struct Customer {
    #[etl(mask = "hmac_sha256")]
    pub email: String,
    #[etl(mask = "hmac_sha256")]
    pub phone: Option<String>,
    #[etl(sql_type = "integer", mask = "hmac_sha256")]
    pub visits: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, EtlTable)]
#[etl(table = "orders", primary_key(id))]
pub struct Order {
    pub id: i64,
    #[etl(mask = "hmac_sha256")]
    pub customer_email: String,
    pub amount_cents: i32,
}

/// Exports `T` with `key`, uncompressed: a value that got through unmasked would be in the
/// files' bytes as it is.
async fn export<T: EtlTable>(
    db: &etl_tests::TestDb,
    dir: &Path,
    key: Option<&str>,
) -> etl_runtime::Result<TableReport> {
    let mut source = PgSource::connect(&db.url, &SourceOptions::default()).await?;
    source.export_snapshot().await?;
    let sink = LocalDirSink::new(dir, "masking")?;
    let options = ExportOptions {
        parquet: ParquetOptions {
            codec: Codec::None,
            ..ParquetOptions::default()
        },
        mask_key: key.map(|k| MaskKey::new(k.as_bytes()).expect("a key")),
        ..ExportOptions::default()
    };
    let result = etl_runtime::export_table::<T>(&source, &sink, &options).await;
    source.close().await;
    result
}

/// Every file under `dir`, and every key of every key file, free of the source's values.
fn assert_no_source_values(dir: &Path) {
    let mut files = 0;
    let mut keys = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).expect("read");
            for needle in ["@example.com", "+44 7700"] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{} holds `{needle}`",
                    path.display()
                );
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("_keys-") {
                let mut reader = etl_runtime::layout::keys::KeyFileReader::open(&path, name)
                    .expect("a key file");
                while let Some(key) = reader.next_key().expect("a key") {
                    // One field: its length, then 64 hex digits.
                    assert_eq!(key.len(), 2 + 4 + 64, "{}", String::from_utf8_lossy(key));
                    assert!(key[6..].iter().all(u8::is_ascii_hexdigit));
                    keys += 1;
                }
            }
        }
    }
    assert!(files > 0 && keys > 0, "{files} files, {keys} keys");
}

/// The current customers across the full export and its batches, against pgcrypto's hashes
/// of PostgreSQL's rows (`customers_masked`), through DuckDB and pyarrow.
fn latest_customers(db: &etl_tests::TestDb, dir: &Path) -> String {
    etl_tests::python::latest_versions_equal_postgres(
        &db.url,
        &dir.join("customers"),
        "customers_masked",
        ("email", "email, phone, visits, updated_at"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn masked_columns_leave_only_their_keyed_hash() {
    let db = common::database("masking", SCHEMA);
    let dir = common::out_dir(&db.name);

    // No key: nothing is read, nothing published.
    let error = export::<Customer>(&db, &dir, None)
        .await
        .expect_err("masked columns need a key");
    assert!(error.to_string().contains("no mask key"), "{error}");
    assert!(!dir.join("customers").exists());

    let full = export::<Customer>(&db, &dir, Some(KEY_A))
        .await
        .expect("full export");
    assert_eq!(full.rows, 2000);
    let orders = export::<Order>(&db, &dir, Some(KEY_A))
        .await
        .expect("orders");
    assert_eq!(orders.rows, 5000);
    assert_no_source_values(&dir);

    // Equal to pgcrypto's HMAC under the same key, value for value (NULL stays NULL), in both
    // tables: the same e-mail hashes the same in each, so they still join.
    let report = latest_customers(&db, &dir);
    assert!(report.contains("equal: 2000 rows"), "{report}");
    let expected_orders = |key: &str, table: &str| {
        format!(
            "CREATE TABLE {table} AS SELECT id, mask(customer_email, '{key}') AS customer_email, \
             amount_cents FROM orders; \
             ALTER TABLE {table} ADD PRIMARY KEY (id), ALTER customer_email SET NOT NULL, \
             ALTER amount_cents SET NOT NULL"
        )
    };
    etl_tests::postgres::psql(&db.url, &expected_orders(KEY_A, "orders_a")).expect("oracle");
    common::assert_readers_agree(&db, &dir, &["orders_a=orders"]);
    let joined = etl_tests::postgres::psql(
        &db.url,
        "SELECT count(*) FROM orders_a o JOIN customers_masked c ON c.email = o.customer_email",
    )
    .expect("join");
    assert_eq!(joined, "5000");

    // Another key: other hashes, each pgcrypto's under that key.
    let other = common::out_dir(&format!("{}-key-b", db.name));
    export::<Order>(&db, &other, Some(KEY_B))
        .await
        .expect("orders under key B");
    etl_tests::postgres::psql(&db.url, &expected_orders(KEY_B, "orders_b")).expect("oracle");
    common::assert_readers_agree(&db, &other, &["orders_b=orders"]);
    let same = etl_tests::postgres::psql(
        &db.url,
        "SELECT count(*) FROM orders_a a JOIN orders_b b USING (id) \
         WHERE a.customer_email = b.customer_email",
    )
    .expect("compare");
    assert_eq!(same, "0", "a different key gives different hashes");

    // A masked primary key carries the incremental state: changes, new rows and deletions
    // found by the masked keys (sorted by this client, as the server never sees them).
    etl_tests::postgres::psql(
        &db.url,
        "UPDATE customers SET phone = '+44 7700 999999', updated_at = clock_timestamp() \
             WHERE visits = 3; \
         INSERT INTO customers (email, phone, visits) \
             SELECT 'new' || i || '@example.com', NULL, 1 FROM generate_series(1, 25) i; \
         DELETE FROM customers WHERE visits = 7",
    )
    .expect("changes");
    let batch = export::<Customer>(&db, &dir, Some(KEY_A))
        .await
        .expect("batch");
    let outcome = batch.incremental.as_ref().expect("incremental outcome");
    assert_eq!(outcome.mode, "batch", "{outcome:?}");
    assert_eq!(outcome.deleted, 40, "{outcome:?}");
    assert!(
        batch.rows >= 40 + 25 + 40,
        "deletions, new rows and changed rows: {}",
        batch.rows
    );
    assert_no_source_values(&dir);
    let report = latest_customers(&db, &dir);
    assert!(report.contains("equal: 1985 rows"), "{report}");
    assert!(report.contains("(40 deletions)"), "{report}");

    // Another key on the same table: its batches would not match the rows before them, so
    // the table is exported in full.
    let rekeyed = export::<Customer>(&db, &dir, Some(KEY_B))
        .await
        .expect("a run with another key");
    let outcome = rekeyed.incremental.as_ref().expect("incremental outcome");
    assert_eq!(outcome.mode, "full", "{outcome:?}");
    assert!(outcome.reason.contains("mask key changed"), "{outcome:?}");
}

/// `gen --columns` writes the columns it leaves out as `omit`.
mod subset {
    use etl_runtime::EtlTable;

    #[derive(Debug, EtlTable)]
    #[etl(table = "orders", primary_key(id), omit = "amount_cents")]
    pub struct OrderEmails {
        pub id: i64,
        #[etl(mask = "hmac_sha256")]
        pub customer_email: String,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn columns_left_out_on_purpose_are_not_drift() {
    use etl_runtime::sqlx::Connection;
    let db = common::database("omitted_columns", SCHEMA);
    let mut conn = etl_runtime::sqlx::PgConnection::connect(&db.url)
        .await
        .expect("connect");
    let info = &subset::OrderEmails::INFO;
    let drift = etl_runtime::source::drift::check_table(&mut conn, info).await;
    assert_eq!(drift.expect("drift"), []);
    etl_tests::postgres::psql(&db.url, "ALTER TABLE orders ADD COLUMN note text").expect("add");
    // A column nobody chose to leave out is still news.
    let drift = etl_runtime::source::drift::check_table(&mut conn, info).await;
    assert_eq!(
        drift.expect("drift"),
        [etl_runtime::model::Drift::ColumnAdded {
            column: "note".into(),
            sql_type: "text".into()
        }]
    );
}
