//! `cargo xtask gen` on real tables with every supported type and awkward name: the models it
//! writes compile without a warning, export, and read back equal through pyarrow and DuckDB;
//! a second run changes nothing; `--check` catches each kind of drift.

use crate::common;

use std::path::{Path, PathBuf};

use xtask::gen_models::{GenArgs, check, generate};

const SCHEMA: &str = r#"
CREATE SCHEMA sales;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_amount AS numeric(12,2) CHECK (VALUE > 0);
CREATE DOMAIN email AS text NOT NULL;

-- Names that are not Rust identifiers, two that collide once snake_cased, and no primary key.
CREATE TABLE awkward (
    "type"         text NOT NULL,
    "match"        integer,
    "self"         text,
    "fn"           boolean,
    "UserID"       bigint,
    "user_id"      integer,
    "Display Name" text,
    "1st"          integer
);
INSERT INTO awkward VALUES ('a', 1, 's', true, 10, 11, 'Name One', 1),
                           ('b', NULL, NULL, NULL, NULL, NULL, NULL, NULL);

CREATE TABLE every_type (
    id          integer PRIMARY KEY,
    small       smallint,
    big         bigint NOT NULL,
    real_v      real,
    dbl         double precision,
    sized       numeric,
    huge        numeric,
    with_nan    numeric,
    empty_num   numeric,
    fixed       numeric(10,3),
    amount      positive_amount,
    contact     email,
    flag        boolean,
    code        char(3),
    label       varchar(20),
    feeling     mood,
    feelings    mood[],
    uid         uuid,
    d           date,
    t           time,
    ts          timestamp,
    tstz        timestamptz,
    iv          interval,
    doc         jsonb,
    raw_doc     json,
    ints        integer[],
    decs        numeric(10,2)[],
    bin         bytea,
    addr        inet,
    words       tsvector,
    price       money
);
INSERT INTO every_type VALUES
  (1, 1, 2, 1.5, -0.0, 123.4567, 12345678901234567890123456789012345678901234.5, 1, NULL, 1.5, 10.00,
   'a@example.com', true, 'ab', 'x', 'happy', ARRAY['sad', NULL]::mood[], 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   '2020-01-01', '12:00:00.000001', '1999-12-31 23:59:59.999999', '2020-01-01 00:00:00+00', '1 day 2 hours',
   '{"k": [1, 2.5, {"deep": null}]}', '{"b": 1, "a": 2}', ARRAY[1, NULL, 3], ARRAY[1.25, NULL]::numeric(10,2)[],
   '\x0001', '10.0.0.1', 'a fat cat', 12.34),
  (2, NULL, 3, NULL, NULL, -98765.4, NULL, 'NaN', NULL, NULL, NULL,
   'b@example.com', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
   NULL, NULL, NULL, NULL);

CREATE TABLE sales.orders (id bigint PRIMARY KEY, amount numeric(10,2), note text);
INSERT INTO sales.orders VALUES (1, 9.99, 'first'), (2, NULL, NULL);

-- Shapes of real schemas: a column named like its table, names Diesel's `table!` defines
-- itself, a Rust keyword and Diesel DSL methods as column names.
CREATE TABLE address (
    address_id integer PRIMARY KEY,
    address    text NOT NULL,
    star       integer,
    "table"    text,
    columns    text,
    "select"   text,
    "filter"   text,
    "where"    text
);
INSERT INTO address VALUES (1, 'Main St 1', 5, 't', 'c', 's', 'f', 'w'),
                           (2, 'Side St 2', NULL, NULL, NULL, NULL, NULL, NULL);

-- A partitioned parent with a leaf partitioned again: `--all` generates the parent only, and
-- its export reads every leaf once.
CREATE TABLE payment (
    payment_id integer,
    paid_on    date NOT NULL,
    amount     numeric(5,2),
    PRIMARY KEY (payment_id, paid_on)
) PARTITION BY RANGE (paid_on);
CREATE TABLE payment_2024_01 PARTITION OF payment FOR VALUES FROM ('2024-01-01') TO ('2024-02-01');
CREATE TABLE payment_2024_02 PARTITION OF payment FOR VALUES FROM ('2024-02-01') TO ('2024-03-01')
    PARTITION BY HASH (payment_id);
CREATE TABLE payment_2024_02_h0 PARTITION OF payment_2024_02 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE payment_2024_02_h1 PARTITION OF payment_2024_02 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO payment SELECT g, DATE '2024-01-01' + g, g * 1.25 FROM generate_series(0, 50) g;

-- Non-ASCII names of a table, its columns and a type; a domain over a domain.
CREATE DOMAIN "bıgınt" AS bigint;
CREATE DOMAIN percent AS integer CHECK (VALUE BETWEEN 0 AND 100);
CREATE DOMAIN required_percent AS percent NOT NULL;
CREATE TABLE "café" (id "bıgınt" PRIMARY KEY, "prix_€" numeric(8,2), "größe" text, share required_percent);
INSERT INTO "café" VALUES (1, 2.50, 'groß', 40), (2, NULL, NULL, 0);
CREATE TABLE "cafè" (id integer PRIMARY KEY);
INSERT INTO "cafè" VALUES (7);
"#;

fn args(db: &etl_tests::TestDb, dir: &Path) -> GenArgs {
    GenArgs {
        table: None,
        all: false,
        schema: "public".into(),
        columns: Vec::new(),
        partition_by: None,
        cursor: None,
        mask: Vec::new(),
        database_url: db.url.clone(),
        models_dir: dir.to_path_buf(),
        check: false,
        remove: None,
    }
}

fn read_all(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(dir)
        .expect("models dir")
        .flatten()
        .map(|e| {
            let path = e.path();
            let text = std::fs::read_to_string(&path).expect("read");
            (path, text)
        })
        .collect();
    files.sort();
    files
}

async fn generate_models(db: &etl_tests::TestDb, dir: &Path) {
    generate(&GenArgs {
        all: true,
        ..args(db, dir)
    })
    .await
    .expect("gen --all");
    generate(&GenArgs {
        table: Some("orders".into()),
        schema: "sales".into(),
        ..args(db, dir)
    })
    .await
    .expect("gen --schema sales --table orders");
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_models_compile_export_and_read_back_equal() {
    let db = common::database("gen", SCHEMA);
    let root = common::out_dir(&db.name);
    let models = root.join("models");
    generate_models(&db, &models).await;

    // Idempotent: a second run rewrites nothing and registers nothing twice.
    let first = read_all(&models);
    generate_models(&db, &models).await;
    assert_eq!(first, read_all(&models), "a second gen run changed files");
    let registry = std::fs::read_to_string(models.join("mod.rs")).expect("mod.rs");
    assert_eq!(
        registry.matches("pub mod every_type;").count(),
        1,
        "{registry}"
    );
    assert!(registry.contains("pub mod sales_orders;"), "{registry}");

    let every_type = std::fs::read_to_string(models.join("every_type.rs")).expect("model");
    for expected in [
        // unconstrained numerics: sized from the data, or exact text when no DECIMAL fits
        r#"#[etl(sql_type = "numeric(18,4)")]"#,
        r#"#[etl(sql_type = "numeric", numeric = "string")]"#,
        "pub with_nan: Option<String>",
        // domains as their base type, NOT NULL when the domain says so
        r#"#[etl(sql_type = "numeric(12,2)")]"#,
        "pub contact: String",
        "pub feelings: Option<Vec<Option<String>>>",
        "tsvector has no Parquet mapping: exported as text through ::text",
    ] {
        assert!(
            every_type.contains(expected),
            "`{expected}` missing from:\n{every_type}"
        );
    }
    // A partitioned table is one model: its leaves, partitioned or not, get none.
    assert!(models.join("payment.rs").exists());
    let leaves: Vec<_> = read_all(&models)
        .into_iter()
        .filter(|(path, _)| path.to_string_lossy().contains("payment_2024"))
        .collect();
    assert!(leaves.is_empty(), "leaf partitions generated: {leaves:?}");
    // Columns Diesel's `table!` cannot name keep their field and SQL names.
    let address = std::fs::read_to_string(models.join("address.rs")).expect("model");
    for expected in [
        "pub address: String",
        "pub star: Option<i32>",
        "pub table: Option<String>",
        "pub columns: Option<String>",
        "pub select: Option<String>",
        r#"#[etl(column = "where", sql_type = "text")]"#,
    ] {
        assert!(
            address.contains(expected),
            "`{expected}` missing from:\n{address}"
        );
    }
    // Two tables whose ASCII names collide get a file each; a domain over a domain is its
    // base type, NOT NULL from the outer domain.
    let mut cafes = [
        std::fs::read_to_string(models.join("caf.rs")).expect("model"),
        std::fs::read_to_string(models.join("caf_2.rs")).expect("model"),
    ];
    cafes.sort_by_key(|text| !text.contains("from table public.café;"));
    let [cafe, other] = cafes;
    assert!(cafe.contains("from table public.café;"), "{cafe}");
    assert!(other.contains("from table public.cafè;"), "{other}");
    for expected in [
        r#"#[etl(column = "größe", sql_type = "text")]"#,
        r#"#[etl(column = "prix_€", sql_type = "numeric(8,2)")]"#,
        "/// domain bıgınt over bigint",
        "/// domain required_percent over integer",
        "pub share: i32",
    ] {
        assert!(
            cafe.contains(expected),
            "`{expected}` missing from:\n{cafe}"
        );
    }

    let awkward = std::fs::read_to_string(models.join("awkward.rs")).expect("model");
    for expected in [
        "no_primary_key",
        r#"#[etl(column = "type", sql_type = "text")]"#,
        "pub type_: String",
        "pub match_: Option<i32>",
        "pub self_: Option<String>",
        "pub fn_: Option<bool>",
        r#"#[etl(column = "UserID", sql_type = "bigint")]"#,
        "pub user_id: Option<i64>",
        "pub user_id_2: Option<i32>",
        r#"#[etl(column = "Display Name", sql_type = "text")]"#,
        "pub c_1st: Option<i32>",
    ] {
        assert!(
            awkward.contains(expected),
            "`{expected}` missing from:\n{awkward}"
        );
    }

    // Build the generated code (warnings denied) and run an export of every model with it.
    let out = root.join("out");
    let program = root.join("export_generated.rs");
    std::fs::write(
        &program,
        format!(
            r#"#![deny(warnings)]
#[path = "models/mod.rs"]
mod models;

fn main() {{
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {{
        let mut source = etl_runtime::PgSource::connect({url:?}, &Default::default())
            .await
            .expect("connect");
        source.export_snapshot().await.expect("snapshot");
        let sink = etl_runtime::LocalDirSink::new({out:?}, "gen").expect("sink");
        for export in models::registry().all() {{
            if let Err(e) = export.run(&source, &sink, &Default::default()).await {{
                panic!("{{}}: {{}}", export.name(), etl_runtime::error::report(&e));
            }}
        }}
    }});
}}
"#,
            url = db.url,
            out = out.display().to_string(),
        ),
    )
    .expect("write program");
    {
        let _trybuild = common::trybuild_lock();
        trybuild::TestCases::new().pass(&program);
        // TestCases runs when dropped, at the end of this block.
    }
    // The program exported every table.
    common::assert_readers_agree(
        &db,
        &out,
        &[
            "awkward",
            "every_type",
            "sales.orders",
            "address",
            "payment",
            "café",
            "cafè",
        ],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leaf_partition_asked_for_by_name_says_its_rows_are_the_parents() {
    let db = common::database("gen_leaf", SCHEMA);
    let pool = sqlx::PgPool::connect(&db.url).await.expect("connect");
    for leaf in ["payment_2024_01", "payment_2024_02_h1"] {
        let def = xtask::gen_models::introspect(&pool, "public", leaf)
            .await
            .expect("introspect a leaf");
        assert!(
            def.notes
                .iter()
                .any(|n| n.contains("is a partition of public.payment")
                    || n.contains("is a partition of public.payment_2024_02")),
            "{leaf}: {:?}",
            def.notes
        );
    }
    let parent = xtask::gen_models::introspect(&pool, "public", "payment")
        .await
        .expect("introspect the parent");
    assert!(parent.notes.is_empty(), "{:?}", parent.notes);
    assert_eq!(parent.primary_key, ["payment_id", "paid_on"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn check_catches_each_kind_of_drift() {
    let db = common::database("gen_check", SCHEMA);
    let root = common::out_dir(&db.name);
    let models = root.join("models");
    generate_models(&db, &models).await;
    generate(&GenArgs {
        table: Some("every_type".into()),
        columns: vec!["big".into(), "label".into()],
        mask: vec!["big".into(), "label".into()],
        partition_by: None,
        models_dir: root.join("subset"),
        ..args(&db, &root)
    })
    .await
    .expect("gen --columns --mask");
    let subset = std::fs::read_to_string(root.join("subset/every_type.rs")).expect("subset");
    assert!(
        subset.contains("--columns big,label --mask big,label"),
        "{subset}"
    );
    assert_eq!(
        subset.matches("pub ").count(),
        4,
        "id (the key), big, label:\n{subset}"
    );
    // The columns left out are named, so that the drift check does not call them added; the
    // masked ones are read as their text, whatever their type.
    assert!(subset.contains("omit = \"small, real_v,"), "{subset}");
    assert!(
        subset.contains(
            "#[etl(sql_type = \"bigint\", mask = \"hmac_sha256\")]\n    pub big: String,"
        ),
        "{subset}"
    );
    let error = generate(&GenArgs {
        table: Some("every_type".into()),
        mask: vec!["nope".into()],
        models_dir: root.join("refused"),
        ..args(&db, &root)
    })
    .await
    .expect_err("an unknown masked column");
    assert!(
        format!("{error:#}").contains("no column `nope`"),
        "{error:#}"
    );

    // --partition-by: written on the model and in its Regenerate command; a key that cannot
    // work is refused before anything is written.
    generate(&GenArgs {
        table: Some("payment".into()),
        partition_by: Some("paid_on:month,payment_id".into()),
        models_dir: root.join("partitioned"),
        ..args(&db, &root)
    })
    .await
    .expect("gen --partition-by");
    let partitioned =
        std::fs::read_to_string(root.join("partitioned/payment.rs")).expect("partitioned");
    assert!(
        partitioned.contains("partition_by = \"paid_on:month, payment_id\"")
            && partitioned.contains("--partition-by paid_on:month,payment_id`"),
        "{partitioned}"
    );
    for (keys, why) in [
        (
            "amount",
            "identity partitioning takes a text, integer or boolean column",
        ),
        ("paid_on:week", "unknown granularity `week`"),
        ("paid_at:day", "has no column `paid_at`"),
    ] {
        let error = generate(&GenArgs {
            table: Some("payment".into()),
            partition_by: Some(keys.into()),
            models_dir: root.join("refused"),
            ..args(&db, &root)
        })
        .await
        .expect_err(keys);
        assert!(format!("{error:#}").contains(why), "{keys}: {error:#}");
    }
    // --cursor: a NOT NULL timestamp, checked against the live column before writing.
    for (cursor, why) in [
        (
            "paid_on",
            "a cursor is a `timestamp` or `timestamptz` column",
        ),
        ("paid_at", "has no column `paid_at`"),
    ] {
        let error = generate(&GenArgs {
            table: Some("payment".into()),
            cursor: Some(cursor.into()),
            models_dir: root.join("refused"),
            ..args(&db, &root)
        })
        .await
        .expect_err(cursor);
        assert!(format!("{error:#}").contains(why), "{cursor}: {error:#}");
    }
    assert!(!root.join("refused/payment.rs").exists());

    let check_dir = |dir: PathBuf| {
        let args = GenArgs {
            check: true,
            remove: None,
            models_dir: dir,
            ..args(&db, &root)
        };
        async move { check(&args).await.expect("check runs") }
    };
    assert_eq!(check_dir(models.clone()).await, 0, "fresh models match");
    assert_eq!(
        check_dir(root.join("subset")).await,
        0,
        "a subset matches its own command"
    );
    assert_eq!(
        check_dir(root.join("partitioned")).await,
        0,
        "a partitioned model matches its own command"
    );

    for (alter, what) in [
        (
            "ALTER TABLE awkward ADD COLUMN extra integer",
            "column added",
        ),
        ("ALTER TABLE awkward DROP COLUMN \"self\"", "column dropped"),
        (
            "ALTER TABLE sales.orders ALTER COLUMN note TYPE varchar(5)",
            "retyped",
        ),
        (
            "ALTER TABLE every_type ALTER COLUMN big DROP NOT NULL",
            "nullability",
        ),
    ] {
        etl_tests::postgres::psql(&db.url, alter).expect("alter");
        assert!(
            check_dir(models.clone()).await >= 1,
            "--check missed: {what}"
        );
        // Regenerating makes the check pass again.
        generate_models(&db, &models).await;
        assert_eq!(
            check_dir(models.clone()).await,
            0,
            "after regenerating for: {what}"
        );
    }

    // Comments and formatting are not differences: the models are compared parsed.
    let awkward = models.join("awkward.rs");
    let text = std::fs::read_to_string(&awkward).expect("awkward.rs");
    std::fs::write(
        &awkward,
        text.replace(",\n", ",\n\n    // a note of our own\n"),
    )
    .expect("rewrite");
    assert_eq!(check_dir(models.clone()).await, 0, "a comment is not drift");

    // A dropped table: the check names it, `--remove` deletes its model and registration.
    etl_tests::postgres::psql(&db.url, "DROP TABLE awkward").expect("drop");
    assert_eq!(check_dir(models.clone()).await, 1, "a dropped table");
    xtask::gen_models::remove(&models, "awkward").expect("gen --remove awkward");
    assert!(!awkward.exists());
    let registry = std::fs::read_to_string(models.join("mod.rs")).expect("mod.rs");
    assert!(!registry.contains("awkward"), "{registry}");
    assert_eq!(check_dir(models.clone()).await, 0, "after --remove");
    assert!(xtask::gen_models::remove(&models, "awkward").is_err());
}
