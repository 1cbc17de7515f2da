//! The demo tasks against an independent oracle: PostgreSQL computes the same result with SQL,
//! and every value is compared exactly (decimals as decimals) through pyarrow and DuckDB, over
//! data with NULLs, missing lookups and rounding ties.

use std::process::Command;

/// Rows that exercise the edges, on top of the demo data.
const EDGE_ROWS: &str = r#"
INSERT INTO purchase_orders (id, uuid, "type", status, amount, options, created_at) VALUES
  -- 0.20 USD * 1.075 = 0.215: a tie, rounded away from zero, both signs
  (900001, md5('e1')::uuid, 'standard', 'approved',  0.20, '{"currency": "USD"}', '2021-05-05 10:00'),
  (900002, md5('e2')::uuid, 'standard', 'approved', -0.20, '{"currency": "USD"}', '2021-05-05 11:00'),
  -- no tax rate for dropship
  (900003, md5('e3')::uuid, 'dropship', NULL, 100.00, '{"currency": "EUR"}', '2021-05-05 12:00'),
  -- no amount
  (900004, md5('e4')::uuid, 'planned', 'draft', NULL, '{"currency": "GBP"}', '2021-05-06 00:00'),
  -- no options, hence no currency
  (900005, md5('e5')::uuid, 'blanket', 'sent', 10.00, NULL, '2021-05-06 23:59:59.999999'),
  -- an unknown currency, and one made inactive below
  (900006, md5('e6')::uuid, 'contract', 'sent', 10.00, '{"currency": "XXX"}', '2021-05-07 08:00'),
  (900007, md5('e7')::uuid, 'standard', 'sent', 12.34, '{"currency": "CHF"}', '2021-05-07 09:00'),
  -- JPY's 8-decimal rate: many digits to round
  (900008, md5('e8')::uuid, 'planned', 'sent', 99999.99, '{"currency": "JPY"}', '2021-05-07 10:00');
UPDATE currencies SET is_active = false WHERE code = 'CHF';
"#;

/// The same results, computed by PostgreSQL.
const ORACLE: &str = r#"
CREATE TABLE oracle_usd (
    id bigint PRIMARY KEY, "type" varchar(32) NOT NULL, currency text, amount numeric(12,2),
    usd_rate numeric(18,8), amount_usd numeric(14,2), tax_rate numeric(5,4),
    amount_usd_with_tax numeric(14,2));
INSERT INTO oracle_usd
SELECT p.id, p."type", p.options->>'currency', p.amount, c.conversion_rate,
       round(p.amount * c.conversion_rate, 2),
       t.rate,
       round(round(p.amount * c.conversion_rate, 2) * (1 + t.rate), 2)
FROM purchase_orders p
LEFT JOIN currencies c ON c.code = p.options->>'currency' AND c.is_active
LEFT JOIN tax_rates t ON t.order_type = p."type";

CREATE TABLE oracle_spend (day date NOT NULL, status text, orders bigint NOT NULL, total_amount numeric(18,2));
INSERT INTO oracle_spend
SELECT created_at::date, status, count(*), sum(amount) FROM purchase_orders GROUP BY 1, 2;
"#;

#[test]
fn demo_tasks_match_postgres_computing_the_same() {
    let db = crate::common::demo_database("tasks_oracle");
    etl_tests::postgres::psql(&db.url, EDGE_ROWS).expect("edge rows");
    etl_tests::postgres::psql(&db.url, ORACLE).expect("oracle");

    let out = etl_tests::target_dir().join("test-out").join(&db.name);
    let _ = std::fs::remove_dir_all(&out);
    let output = Command::new(env!("CARGO_BIN_EXE_etl-demo"))
        .args([
            "run",
            "--tables",
            "purchase_orders_usd,spend_per_day",
            "--output",
        ])
        .arg(&out)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run etl-app");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");

    let python = etl_tests::python().expect("python readers");
    let compare = Command::new(python)
        .arg(etl_tests::workspace_root().join("tests/interop/compare.py"))
        .args(["--dsn", &db.url, "--dir"])
        .arg(&out)
        .args([
            "--tables",
            "oracle_usd=purchase_orders_usd,oracle_spend=spend_per_day",
        ])
        .output()
        .expect("compare.py");
    let verdict = format!(
        "{}{}",
        String::from_utf8_lossy(&compare.stdout),
        String::from_utf8_lossy(&compare.stderr)
    );
    assert!(
        compare.status.success(),
        "the tasks differ from SQL:\n{verdict}"
    );
    assert!(
        verdict.contains("oracle_usd=purchase_orders_usd: 5008 rows"),
        "{verdict}"
    );

    // The edges really are in the data the oracle checked.
    let ties = etl_tests::postgres::psql(
        &db.url,
        "SELECT string_agg(amount_usd_with_tax::text, ',' ORDER BY id) FROM oracle_usd WHERE id IN (900001, 900002)",
    )
    .expect("ties");
    assert_eq!(ties, "0.22,-0.22");
}
