"""The latest version of each row across a table's full export and its incremental batches,
read by DuckDB (the README's query) and by pyarrow, compared with PostgreSQL value for value.

usage: latest_versions.py --dsn URL --dir TABLE_DIR --table T --key K --cursor C --select "..."
"""
import argparse
import sys

import duckdb
import psycopg
import pyarrow.dataset as ds

parser = argparse.ArgumentParser()
for flag in ("--dsn", "--dir", "--table", "--key", "--cursor", "--select"):
    parser.add_argument(flag, required=True)
args = parser.parse_args()

with psycopg.connect(args.dsn) as conn:
    expected = [tuple(r) for r in conn.execute(
        f"SELECT {args.select} FROM {args.table} ORDER BY {args.key}")]
    expected_versions = {r[0]: r[1] for r in conn.execute(
        f"SELECT {args.key}, {args.cursor} FROM {args.table}")}

files = f"{args.dir}/**/*.parquet"
got = [tuple(r) for r in duckdb.sql(f"""
    SELECT {args.select} FROM read_parquet('{files}')
    QUALIFY row_number() OVER (PARTITION BY {args.key} ORDER BY {args.cursor} DESC) = 1
    ORDER BY {args.key}""").fetchall()]
if got != expected:
    missing = [e for e in expected if e not in got][:5]
    extra = [g for g in got if g not in expected][:5]
    print(f"duckdb: {len(got)} rows, PostgreSQL {len(expected)}; "
          f"missing {missing}; not in PostgreSQL {extra}")
    sys.exit(1)

table = ds.dataset(args.dir, format="parquet").to_table(columns=[args.key, args.cursor])
latest = {}
for key, cursor in zip(table.column(0).to_pylist(), table.column(1).to_pylist()):
    if key not in latest or cursor > latest[key]:
        latest[key] = cursor
if latest != expected_versions:
    differ = [k for k in expected_versions if latest.get(k) != expected_versions[k]][:5]
    print(f"pyarrow: latest versions differ for keys {differ}")
    sys.exit(1)
print(f"equal: {len(expected)} rows from {table.num_rows} versions")
