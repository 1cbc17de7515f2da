//! Every type of the mapping table, with NULLs and edge values, exported and read back by
//! pyarrow and DuckDB, value for value against PostgreSQL.

use crate::common;

use bigdecimal::BigDecimal;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use etl_runtime::EtlTable;
use uuid::Uuid;

const SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE edge_cases (
    id            bigint PRIMARY KEY,
    small         smallint,
    big           bigint NOT NULL,
    real_v        real,
    dbl           double precision,
    dec           numeric(12,2),
    dec38         numeric(38,10),
    dec_text      numeric,
    dec_f64       numeric(10,3),
    flag          boolean,
    txt           text,
    ch            char(5),
    uid           uuid,
    uid_bytes     uuid,
    d             date,
    ts            timestamp,
    tstz          timestamptz,
    t             time,
    iv            interval,
    js            json,
    jsb           jsonb,
    int_arr       integer[],
    text_arr      text[],
    num_arr       numeric(10,2)[],
    ts_arr        timestamp[],
    list_arr      bigint[],
    bin           bytea,
    feeling       mood,
    "Display Name" text,
    "UserID"      integer,
    "type"        text NOT NULL,
    addr          inet
);
INSERT INTO edge_cases (id, big, "type") VALUES (1, 0, 'all nulls');
INSERT INTO edge_cases VALUES (
    2, -32768, 9223372036854775807, 'NaN', '-0.0',
    '-9999999999.99', '1234567890123456789012345678.0123456789', '123456789012345678901234567890.123456789012345678901234567890',
    '1234567.125', true,
    E'unicode ü 日本語 🚚, quotes "'' and control \x01\x1f, newline\n', 'ab',
    '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
    '1901-12-13', '1969-12-31 23:59:59.999999', '2999-12-31 23:59:59.999999+00', '23:59:59.999999',
    '1 year 2 months 3 days 04:05:06.789', '{"b": [1, 2.50, null], "a": {"deep": {"deeper": "x"}}}',
    '{"big": 123456789012345678901234567890, "small": 1e-20, "null": null, "s": "\u00e9"}',
    ARRAY[]::integer[], ARRAY['a', NULL, 'b', '', 'quote"d'], ARRAY[1.50, NULL, -2.25]::numeric(10,2)[],
    ARRAY['1900-01-01 00:00:00', NULL, '2999-01-01 12:00:00.5']::timestamp[], ARRAY[NULL, 9223372036854775807, -1]::bigint[],
    '', 'happy', 'spaces in the name', 42, 'edge', '192.168.0.1/24'
);
INSERT INTO edge_cases VALUES (
    3, 32767, -9223372036854775808, 'Infinity', '-Infinity',
    '0.01', '-0.0000000001', '0', '-0.001', false,
    '', '', '123e4567-e89b-12d3-a456-426614174000', '123e4567-e89b-12d3-a456-426614174000',
    '2000-02-29', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '00:00:00',
    '-1 days', 'null', '[]', ARRAY[NULL]::integer[], ARRAY[]::text[], ARRAY[]::numeric(10,2)[],
    ARRAY[]::timestamp[], ARRAY[]::bigint[], '\x00ff10'::bytea, 'sad', '', -1, 'type', '::1'
);
INSERT INTO edge_cases (id, big, real_v, dbl, ts, tstz, "type", jsb, text_arr)
VALUES (4, 1, '-Infinity', 'NaN', '2024-02-29 12:34:56.000001', '1900-06-15 08:00:00.5+02', 'more',
        '"just a string"', ARRAY[NULL, NULL]::text[]);
INSERT INTO edge_cases (id, big, real_v, dbl, "type") VALUES (5, 2, '-0.0', '1e308', 'floats');
"#;

#[derive(Debug, Clone, PartialEq, EtlTable)]
#[etl(table = "edge_cases", primary_key(id))]
pub struct EdgeCase {
    pub id: i64,
    pub small: Option<i16>,
    pub big: i64,
    pub real_v: Option<f32>,
    pub dbl: Option<f64>,
    #[etl(sql_type = "numeric(12,2)")]
    pub dec: Option<BigDecimal>,
    #[etl(sql_type = "numeric(38,10)")]
    pub dec38: Option<BigDecimal>,
    #[etl(sql_type = "numeric", numeric = "string")]
    pub dec_text: Option<String>,
    #[etl(sql_type = "numeric(10,3)", numeric = "f64")]
    pub dec_f64: Option<f64>,
    pub flag: Option<bool>,
    pub txt: Option<String>,
    #[etl(sql_type = "char(5)")]
    pub ch: Option<String>,
    pub uid: Option<Uuid>,
    #[etl(uuid = "bytes")]
    pub uid_bytes: Option<Uuid>,
    pub d: Option<NaiveDate>,
    pub ts: Option<NaiveDateTime>,
    pub tstz: Option<DateTime<Utc>>,
    pub t: Option<NaiveTime>,
    #[etl(sql_type = "interval")]
    pub iv: Option<String>,
    #[etl(sql_type = "json")]
    pub js: Option<serde_json::Value>,
    pub jsb: Option<serde_json::Value>,
    pub int_arr: Option<Vec<Option<i32>>>,
    pub text_arr: Option<Vec<Option<String>>>,
    #[etl(sql_type = "numeric(10,2)[]")]
    pub num_arr: Option<Vec<Option<BigDecimal>>>,
    pub ts_arr: Option<Vec<Option<NaiveDateTime>>>,
    #[etl(array = "list")]
    pub list_arr: Option<Vec<Option<i64>>>,
    pub bin: Option<Vec<u8>>,
    #[etl(sql_type = "mood")]
    pub feeling: Option<String>,
    #[etl(column = "Display Name")]
    pub display_name: Option<String>,
    #[etl(column = "UserID")]
    pub user_id: Option<i32>,
    #[etl(column = "type")]
    pub type_: String,
    #[etl(sql_type = "inet")]
    pub addr: Option<String>,
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_round_trips_through_pyarrow_and_duckdb() {
    let db = common::database("roundtrip", SCHEMA);
    let dir = common::out_dir(&db.name);
    let report = common::export::<EdgeCase>(&db, &dir).await.expect("export");
    assert_eq!(report.rows, 5);
    common::assert_readers_agree(&db, &dir, &["edge_cases"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn diesel_and_sqlx_read_the_same_model() {
    use diesel::{QueryDsl, SelectableHelper};
    let db = common::database("diesel_sqlx", SCHEMA);
    // The Diesel query the generated `table!` and `Selectable` build, run through sqlx.
    let query = edge_cases::table
        .select(EdgeCase::as_select())
        .order(edge_cases::id);
    let sql = diesel::debug_query::<diesel::pg::Pg, _>(&query).to_string();
    let sql = sql.trim_end_matches(" -- binds: []").to_string();
    assert!(sql.contains(r#""edge_cases"."Display Name""#), "{sql}");
    assert!(
        sql.contains(r#""public"."edge_cases"."feeling"::text"#),
        "{sql}"
    );

    // The session settings etl-app uses: interval text in ISO 8601.
    let options: sqlx::postgres::PgConnectOptions = db.url.parse().expect("url");
    let options = options.options([("intervalstyle", "iso_8601")]);
    let pool = sqlx::PgPool::connect_with(options).await.expect("connect");
    let by_name: Vec<EdgeCase> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .fetch_all(&pool)
        .await
        .expect("sqlx FromRow reads the Diesel selection");
    assert_eq!(by_name.len(), 5);
    assert_eq!(
        by_name[1].display_name.as_deref(),
        Some("spaces in the name")
    );
    assert_eq!(by_name[1].feeling.as_deref(), Some("happy"));
    assert_eq!(
        by_name[1].ch.as_deref(),
        Some("ab   "),
        "char(n) keeps its padding"
    );
    assert_eq!(by_name[1].iv.as_deref(), Some("P1Y2M3DT4H5M6.789S"));
    assert!(by_name[1].real_v.is_some_and(f32::is_nan));
    assert!(
        by_name[1]
            .dbl
            .is_some_and(|v| v == 0.0 && v.is_sign_negative())
    );
    assert_eq!(
        by_name[1].jsb.as_ref().map(|v| v["big"].to_string()),
        Some("123456789012345678901234567890".to_string()),
        "jsonb numbers keep every digit"
    );
}

/// With statistics, the mostly distinct columns are written without a dictionary, in the
/// delta encodings (integers, dates, timestamps and decimals DELTA_BINARY_PACKED, text
/// DELTA_LENGTH_BYTE_ARRAY), extremes included: every type still reads back equal.
#[tokio::test(flavor = "multi_thread")]
async fn every_type_round_trips_in_the_delta_encodings_too() {
    let db = common::database("roundtrip_delta", SCHEMA);
    // Five rows are too few for the statistics to call a column mostly distinct: say so.
    let columns = [
        "big", "dec", "ts", "tstz", "d", "t", "txt", "uid", "jsb", "bin",
    ];
    let distinct: String = columns
        .iter()
        .map(|c| format!("ALTER TABLE edge_cases ALTER COLUMN {c} SET (n_distinct = -1); "))
        .collect();
    etl_tests::postgres::psql(&db.url, &format!("{distinct} ANALYZE edge_cases")).expect("analyze");
    let dir = common::out_dir(&db.name);
    common::export::<EdgeCase>(&db, &dir).await.expect("export");
    let encodings = common::column_encodings(&dir.join("edge_cases"));
    for (column, encoding) in [
        ("big", "DELTA_BINARY_PACKED"),
        ("dec", "DELTA_BINARY_PACKED"),
        ("ts", "DELTA_BINARY_PACKED"),
        ("tstz", "DELTA_BINARY_PACKED"),
        ("d", "DELTA_BINARY_PACKED"),
        ("t", "DELTA_BINARY_PACKED"),
        ("txt", "DELTA_LENGTH_BYTE_ARRAY"),
        ("uid", "DELTA_LENGTH_BYTE_ARRAY"),
        ("jsb", "DELTA_LENGTH_BYTE_ARRAY"),
        ("bin", "DELTA_LENGTH_BYTE_ARRAY"),
    ] {
        assert!(
            encodings[column]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e == encoding)),
            "{column}: {encoding} expected, the file has {}",
            encodings[column]
        );
    }
    common::assert_readers_agree(&db, &dir, &["edge_cases"]);
}
