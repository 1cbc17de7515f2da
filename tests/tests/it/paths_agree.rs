//! The two ways a row reaches Parquet write the same bytes. Table exports push COPY fields
//! straight into the column encoders (the wire path); tasks read each row into its model and
//! push the model (the model path). For every mapped type and opt-in, with NULLs and edge
//! values, the same COPY tuples through both paths give identical Arrow arrays and identical
//! Parquet files.
//!
//! One documented difference is kept out of the data: a `json` (not `jsonb`) value's text is
//! exported as stored, while a model's `serde_json::Value` is written the way jsonb prints
//! itself. The json values below are written in that form.

use crate::common;

use arrow_array::RecordBatch;
use bigdecimal::BigDecimal;
use bytes::Bytes;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use etl_runtime::source::copy::TupleSplitter;
use etl_runtime::write::{ParquetFileWriter, ParquetOptions};
use etl_runtime::{EtlTable, RecordBatchEncoder, WireBatchEncoder};
use futures_util::TryStreamExt;
use uuid::Uuid;

const SCHEMA: &str = r#"
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE TABLE scalars (
    id          bigint PRIMARY KEY,
    code        text,
    i2          smallint,
    i4          integer,
    i8          bigint NOT NULL,
    f4          real,
    f8          double precision,
    dec         numeric(38,10),
    dec_text    numeric,
    dec_f64     numeric(10,3),
    flag        boolean,
    txt         text,
    uid         uuid,
    uid_bytes   uuid,
    d           date,
    d_inf       date,
    ts          timestamp,
    ts_inf      timestamp,
    tstz        timestamptz,
    t           time,
    iv          interval,
    feeling     mood,
    js          json,
    jsb         jsonb,
    bin         bytea
);
INSERT INTO scalars (id, i8) VALUES (1, 0);
INSERT INTO scalars VALUES (
    2, E'tab\there', -32768, -2147483648, -9223372036854775808, 'NaN', '-0.0',
    '-1234567890123456789012345678.0123456789', '-0.000000000000000000000000000001', '1234567.125',
    true, E'unicode ü 日本語 🚚, "quotes" \\ and controls \x01\x08\x0c\x1f\n\r\t',
    '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
    '0001-01-01', 'infinity', '1969-12-31 23:59:59.999999', '-infinity',
    '1900-06-15 08:00:00.5+02', '23:59:59.999999', '1 year 2 months 3 days 04:05:06.789', 'happy',
    '{"a": {"deep": [1, 2.50, null, {"x": "é\n"}]}, "b": 1000}',
    '{"big": 123456789012345678901234567890, "small": 1e-20, "nested": {"k": [true, false, null]}, "s": "\u0001 é \"q\""}',
    '\x00ff10'::bytea
);
INSERT INTO scalars (id, code, i8, f4, f8, dec, dec_text, flag, txt, d, d_inf, ts, ts_inf, tstz, t, js, jsb)
VALUES (3, 'Z', 9223372036854775807, '-Infinity', 'Infinity', '0', 'NaN', false, '', '2000-02-29', '-infinity',
        '2024-02-29 12:34:56.000001', 'infinity', '1970-01-01 00:00:00+00', '00:00:00', '[]', '"just a string"');

CREATE TABLE arrays (
    id          bigint PRIMARY KEY,
    a_i2        smallint[],
    a_i4        integer[],
    a_i8        bigint[],
    a_f4        real[],
    a_f8        double precision[],
    a_dec       numeric(12,4)[],
    a_bool      boolean[],
    a_txt       text[],
    a_uid       uuid[],
    a_d         date[],
    a_ts        timestamp[],
    a_tstz      timestamptz[],
    a_t         time[],
    a_js        json[],
    a_jsb       jsonb[],
    a_bin       bytea[],
    l_i8        bigint[],
    l_f8        double precision[],
    l_dec       numeric(12,4)[],
    l_txt       text[],
    l_uid       uuid[],
    l_d         date[],
    l_tstz      timestamptz[],
    l_t         time[]
);
INSERT INTO arrays (id) VALUES (1);
INSERT INTO arrays VALUES (
    2,
    ARRAY[-32768, NULL, 32767]::smallint[], ARRAY[]::integer[], ARRAY[NULL, 9223372036854775807, -1]::bigint[],
    ARRAY['NaN', 'Infinity', '-Infinity', '-0.0', '0.1', NULL]::real[],
    ARRAY['NaN', '-Infinity', '-0.0', '1e308', '5e-324', '0.1']::double precision[],
    ARRAY[1.5, NULL, -2.25, 0, 0.0001]::numeric(12,4)[], ARRAY[true, NULL, false],
    ARRAY['a', NULL, '', E'quote" back\\ nl\n ctl\x01\x08', 'ü 日本']::text[],
    ARRAY['123e4567-e89b-12d3-a456-426614174000', NULL]::uuid[],
    ARRAY['1901-12-13', NULL, '0001-01-01', '2999-12-31']::date[],
    ARRAY['1900-01-01 00:00:00', NULL, '2999-01-01 12:00:00.5', '1969-12-31 23:59:59.000001']::timestamp[],
    ARRAY['1970-01-01 00:00:00+00', '1900-06-15 08:00:00.25+02']::timestamptz[],
    ARRAY['00:00:00', '12:00:00.5', '23:59:59.999999', NULL]::time[],
    ARRAY['{"a": [1, 2]}', 'null', NULL]::json[], ARRAY['{"b": {"c": "d"}, "a": 1}', '[]', '"s"']::jsonb[],
    ARRAY['\x'::bytea, '\x0a1b'::bytea, NULL]::bytea[],
    ARRAY[1, NULL, -1]::bigint[], ARRAY['NaN', '-0.0', NULL]::double precision[],
    ARRAY[1.5, NULL, -99999999.9999]::numeric(12,4)[], ARRAY['x', NULL, '']::text[],
    ARRAY['ffffffff-ffff-ffff-ffff-ffffffffffff', NULL]::uuid[], ARRAY['1901-12-13', NULL]::date[],
    ARRAY['2024-02-29 12:34:56.000001+00', NULL]::timestamptz[], ARRAY['12:00:00.5', NULL]::time[]
);
INSERT INTO arrays (id, a_i4, a_txt, a_jsb, l_i8, l_txt)
VALUES (3, ARRAY[NULL]::integer[], ARRAY[]::text[], ARRAY[]::jsonb[], ARRAY[]::bigint[], ARRAY[NULL]::text[]);
"#;

#[derive(Debug, Clone, EtlTable)]
#[etl(table = "scalars", primary_key(id))]
pub struct Scalars {
    pub id: i64,
    pub code: Option<String>,
    pub i2: Option<i16>,
    pub i4: Option<i32>,
    pub i8: i64,
    pub f4: Option<f32>,
    pub f8: Option<f64>,
    #[etl(sql_type = "numeric(38,10)")]
    pub dec: Option<BigDecimal>,
    #[etl(sql_type = "numeric", numeric = "string")]
    pub dec_text: Option<String>,
    #[etl(sql_type = "numeric(10,3)", numeric = "f64")]
    pub dec_f64: Option<f64>,
    pub flag: Option<bool>,
    pub txt: Option<String>,
    pub uid: Option<Uuid>,
    #[etl(uuid = "bytes")]
    pub uid_bytes: Option<Uuid>,
    pub d: Option<NaiveDate>,
    #[etl(infinity = "null")]
    pub d_inf: Option<NaiveDate>,
    pub ts: Option<NaiveDateTime>,
    #[etl(infinity = "null")]
    pub ts_inf: Option<NaiveDateTime>,
    pub tstz: Option<DateTime<Utc>>,
    pub t: Option<NaiveTime>,
    #[etl(sql_type = "interval")]
    pub iv: Option<String>,
    #[etl(sql_type = "mood")]
    pub feeling: Option<String>,
    #[etl(sql_type = "json")]
    pub js: Option<serde_json::Value>,
    pub jsb: Option<serde_json::Value>,
    pub bin: Option<Vec<u8>>,
}

#[derive(Debug, Clone, EtlTable)]
#[etl(table = "arrays", primary_key(id))]
pub struct Arrays {
    pub id: i64,
    pub a_i2: Option<Vec<Option<i16>>>,
    pub a_i4: Option<Vec<Option<i32>>>,
    pub a_i8: Option<Vec<Option<i64>>>,
    pub a_f4: Option<Vec<Option<f32>>>,
    pub a_f8: Option<Vec<Option<f64>>>,
    #[etl(sql_type = "numeric(12,4)[]")]
    pub a_dec: Option<Vec<Option<BigDecimal>>>,
    pub a_bool: Option<Vec<Option<bool>>>,
    pub a_txt: Option<Vec<Option<String>>>,
    pub a_uid: Option<Vec<Option<Uuid>>>,
    pub a_d: Option<Vec<Option<NaiveDate>>>,
    pub a_ts: Option<Vec<Option<NaiveDateTime>>>,
    pub a_tstz: Option<Vec<Option<DateTime<Utc>>>>,
    pub a_t: Option<Vec<Option<NaiveTime>>>,
    #[etl(sql_type = "json[]")]
    pub a_js: Option<Vec<Option<serde_json::Value>>>,
    pub a_jsb: Option<Vec<Option<serde_json::Value>>>,
    pub a_bin: Option<Vec<Option<Vec<u8>>>>,
    #[etl(array = "list")]
    pub l_i8: Option<Vec<Option<i64>>>,
    #[etl(array = "list")]
    pub l_f8: Option<Vec<Option<f64>>>,
    #[etl(sql_type = "numeric(12,4)[]", array = "list")]
    pub l_dec: Option<Vec<Option<BigDecimal>>>,
    #[etl(array = "list")]
    pub l_txt: Option<Vec<Option<String>>>,
    #[etl(array = "list", uuid = "bytes")]
    pub l_uid: Option<Vec<Option<Uuid>>>,
    #[etl(array = "list")]
    pub l_d: Option<Vec<Option<NaiveDate>>>,
    #[etl(array = "list")]
    pub l_tstz: Option<Vec<Option<DateTime<Utc>>>>,
    #[etl(array = "list")]
    pub l_t: Option<Vec<Option<NaiveTime>>>,
}

/// The COPY tuples of the model's own SELECT, as an export reads them.
async fn copy_tuples<T: EtlTable>(url: &str) -> Vec<Bytes> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query("SET intervalstyle = iso_8601")
        .execute(&mut conn)
        .await
        .expect("set");
    let sql = format!(
        "COPY ({} ORDER BY 1) TO STDOUT (FORMAT binary)",
        T::INFO.select_sql()
    );
    let mut stream = conn.copy_out_raw(&sql).await.expect("copy out");
    let mut splitter = TupleSplitter::new();
    let mut tuples = Vec::new();
    while let Some(chunk) = stream.try_next().await.expect("copy data") {
        splitter.feed(chunk, &mut tuples).expect("tuples");
    }
    tuples
}

fn parquet_bytes(name: &str, batch: &RecordBatch) -> Vec<u8> {
    let path = common::out_dir(&format!("paths_agree_{name}")).join("part.parquet");
    let mut writer = ParquetFileWriter::create(&path, batch.schema(), &ParquetOptions::default())
        .expect("create");
    writer.write(batch).expect("write");
    writer.finish().expect("finish");
    std::fs::read(&path).expect("read back")
}

/// Both paths over every row of `T`'s table; panics at the first column that differs.
async fn assert_paths_agree<T: EtlTable>(url: &str, rows: usize) {
    let name = T::INFO.name;
    let tuples = copy_tuples::<T>(url).await;
    assert_eq!(tuples.len(), rows);

    let mut wire = T::Encoder::with_capacity(tuples.len());
    let mut model = T::Encoder::with_capacity(tuples.len());
    for tuple in &tuples {
        wire.push_wire(tuple)
            .expect("the wire path takes every row");
        let row = T::decode_wire(tuple).expect("every row reads into the model");
        model.push(&row).expect("the model path takes every row");
    }
    let wire = wire.finish().expect("wire batch");
    let model = model.finish().expect("model batch");

    assert_eq!(wire.schema(), model.schema());
    for (i, field) in wire.schema().fields().iter().enumerate() {
        // ArrayData compares values bitwise, so NaN equals the same NaN and -0.0 is not 0.0.
        assert_eq!(
            wire.column(i).to_data(),
            model.column(i).to_data(),
            "{name}.{}: the wire path wrote {:?}, the model path {:?}",
            field.name(),
            wire.column(i),
            model.column(i)
        );
    }
    assert!(
        parquet_bytes(&format!("{name}_wire"), &wire)
            == parquet_bytes(&format!("{name}_model"), &model),
        "{name}: the two Parquet files differ"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wire_path_and_the_model_path_write_the_same_bytes() {
    let db = common::database("paths_agree", SCHEMA);
    assert_paths_agree::<Scalars>(&db.url, 3).await;
    assert_paths_agree::<Arrays>(&db.url, 3).await;
}

/// The comparison above can fail: a batch that differs in one value is caught.
#[tokio::test(flavor = "multi_thread")]
async fn a_difference_in_one_value_is_seen() {
    let db = common::database("paths_differ", SCHEMA);
    let tuples = copy_tuples::<Arrays>(&db.url).await;
    let mut a = <Arrays as EtlTable>::Encoder::with_capacity(1);
    let mut b = <Arrays as EtlTable>::Encoder::with_capacity(1);
    let mut row = Arrays::decode_wire(&tuples[1]).expect("row");
    a.push(&row).expect("push");
    if let Some(Some(last)) = row.a_txt.as_mut().and_then(|v| v.last_mut()) {
        last.push('!');
    }
    b.push(&row).expect("push");
    let (a, b) = (a.finish().expect("a"), b.finish().expect("b"));
    let index = a.schema().index_of("a_txt").expect("column");
    assert_ne!(a.column(index).to_data(), b.column(index).to_data());
    assert!(parquet_bytes("a", &a) != parquet_bytes("b", &b));
}

/// Keys in messages read the same from a model and from the wire.
#[tokio::test(flavor = "multi_thread")]
async fn keys_render_alike_on_both_paths() {
    #[derive(Debug, Clone, EtlTable)]
    #[etl(table = "keys", primary_key(code, day, id, uid))]
    pub struct Keyed {
        pub code: String,
        pub day: NaiveDate,
        pub id: i64,
        pub uid: Uuid,
        #[etl(sql_type = "numeric(4,0)")]
        pub amount: BigDecimal,
    }
    let db = common::database(
        "keys_agree",
        "CREATE TABLE keys (code text, day date, id bigint, uid uuid, amount numeric(6,0), \
         PRIMARY KEY (code, day, id, uid)); \
         INSERT INTO keys VALUES (E'E\"U\\nR', '1999-12-31', -7, \
         '123e4567-e89b-12d3-a456-426614174000', 12345);",
    );
    let tuples = copy_tuples::<Keyed>(&db.url).await;
    let row = Keyed::decode_wire(&tuples[0]).expect("row");
    let mut encoder = <Keyed as EtlTable>::Encoder::with_capacity(1);
    let wire_error = encoder
        .push_wire(&tuples[0])
        .expect_err("12345 does not fit numeric(4,0)'s DECIMAL(4,0)");
    let model_error = encoder
        .push(&row)
        .expect_err("12345 does not fit numeric(4,0)'s DECIMAL(4,0)");
    let expected =
        r#"code="E\"U\nR", day="1999-12-31", id=-7, uid="123e4567-e89b-12d3-a456-426614174000""#;
    assert_eq!(row.key(), expected);
    assert_eq!(wire_error.key.as_deref(), Some(expected));
    assert_eq!(model_error.key.as_deref(), Some(expected));
    assert_eq!(wire_error.to_string(), model_error.to_string());
}
