"""The current rows of a table with a cursor across its full export and its incremental
batches, read by DuckDB (the README's query) and by pyarrow, compared with PostgreSQL value for
value: each key's version of the largest `_etl_batch`, unless that version is a deletion.

usage: latest_versions.py --dsn URL --dir TABLE_DIR --table T --key K --select "..."
"""
import argparse
import sys

import duckdb
import psycopg
import pyarrow.compute as pc
import pyarrow.dataset as ds

parser = argparse.ArgumentParser()
for flag in ("--dsn", "--dir", "--table", "--key", "--select"):
    parser.add_argument(flag, required=True)
args = parser.parse_args()

with psycopg.connect(args.dsn) as conn:
    expected = [tuple(r) for r in conn.execute(
        f"SELECT {args.select} FROM {args.table} ORDER BY {args.key}")]
    expected_keys = sorted(r[0] for r in conn.execute(f"SELECT {args.key} FROM {args.table}"))

files = f"{args.dir}/**/*.parquet"
got = [tuple(r) for r in duckdb.sql(f"""
    SELECT {args.select} FROM (
      SELECT *, row_number() OVER (PARTITION BY {args.key} ORDER BY _etl_batch DESC) AS version_rank
      FROM read_parquet('{files}'))
    WHERE version_rank = 1 AND NOT _etl_deleted
    ORDER BY {args.key}""").fetchall()]
if got != expected:
    missing = [e for e in expected if e not in got][:5]
    extra = [g for g in got if g not in expected][:5]
    print(f"duckdb: {len(got)} rows, PostgreSQL {len(expected)}; "
          f"missing {missing}; not in PostgreSQL {extra}")
    sys.exit(1)

table = ds.dataset(args.dir, format="parquet").to_table(
    columns=[args.key, "_etl_batch", "_etl_deleted"])
latest = {}
for key, batch, deleted in zip(*(table.column(i).to_pylist() for i in range(3))):
    if key not in latest or batch > latest[key][0]:
        latest[key] = (batch, deleted)
current = sorted(k for k, (_, deleted) in latest.items() if not deleted)
if current != expected_keys:
    differ = sorted(set(current) ^ set(expected_keys))[:5]
    print(f"pyarrow: current keys differ from PostgreSQL's at {differ}")
    sys.exit(1)
deletions = pc.sum(table.column("_etl_deleted").cast("int64")).as_py() or 0
print(f"equal: {len(expected)} rows from {table.num_rows} versions ({deletions} deletions)")
