//! Production shapes the bench table does not have: rows carrying large documents, and
//! option values that parquet cannot take.

use crate::common::{demo_database, etl_app, out_dir, text};

/// Rows of ~400 KB (text and jsonb, as large documents are) are read in chunks bounded by bytes,
/// not only by rows: 4,096-row chunks held the whole table several times over (1,200 rows are
/// ~490 MB on the wire), so peak memory followed the rows' width. The export stays within
/// 256 MB, a CronJob's modest limit, and reads back equal to PostgreSQL.
#[test]
fn wide_rows_are_exported_within_a_fixed_memory_budget() {
    let db = demo_database("wide_rows");
    // Each row's text and document differ (md5 of the row number, repeated), so that no
    // reader's or writer's dictionary folds them; PostgreSQL compresses them on disk, COPY
    // sends them whole.
    etl_tests::postgres::psql(
        &db.url,
        "INSERT INTO currencies (code, name, symbol, conversion_rate, conversion_history, \
         is_active, updated_at) \
         SELECT 'W' || i, repeat(md5(i::text), 6400), md5(i::text), i, \
                jsonb_build_object('rates', repeat(md5((-i)::text), 6400), 'n', i), \
                i % 2 = 0, '2026-01-01'::timestamptz + i * interval '1 minute' \
         FROM generate_series(1, 1200) AS i",
    )
    .expect("wide rows");
    let out = out_dir(&db.name);
    let mut run = etl_app();
    run.args(["run", "--tables", "currencies", "--output"])
        .arg(&out)
        .env("DATABASE_URL", &db.url);
    let timed = etl_tests::run_timed(&run).expect("run etl-app");
    let (output, peak_kib) = (timed.output, timed.peak_rss_kib);
    assert!(output.status.success(), "{}", text(&output));
    let peak_mib = peak_kib / 1024;
    eprintln!("peak RSS of the export: {peak_mib} MiB");
    assert!(
        peak_mib < 256,
        "peak RSS {peak_mib} MiB for 1,200 rows of ~400 KB"
    );
    if let Err(e) = etl_tests::python::compare_with_postgres(&db.url, &out, "currencies") {
        panic!("{e}");
    }
}
