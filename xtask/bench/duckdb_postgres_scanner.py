"""DuckDB's postgres scanner as a benchmark peer: one table to zstd Parquet.

Usage: duckdb_postgres_scanner.py POSTGRES_URL TABLE OUTPUT [KEY ...]

Without keys, OUTPUT is one file. With keys, OUTPUT is a directory of Hive partitions
(`PARTITION_BY`), each key a column (`region`) or `name=expression`
(`shipped_at_day=CAST(shipped_at AS DATE)`); the key columns stay in the files, as etl-app's
source columns do. Timestamps with a time zone are taken in UTC.

The extension is the file shipped in the duckdb-extension-postgres-scanner wheel, loaded
unsigned: nothing is downloaded at run time. DuckDB reads the table as COPY of ctid ranges
through several connections on one exported snapshot, with its default threads (the CPUs).
"""

import glob
import os
import sys

import duckdb
import duckdb_extension_postgres_scanner


def main() -> None:
    url, table, output, *keys = sys.argv[1:]
    package = os.path.dirname(duckdb_extension_postgres_scanner.__file__)
    (extension,) = glob.glob(
        os.path.join(package, "extensions", "*", "postgres_scanner.duckdb_extension")
    )
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"LOAD '{extension}'")
    con.execute(f"ATTACH '{url}' AS pg (TYPE postgres, READ_ONLY)")
    if not keys:
        con.execute(
            f"COPY (SELECT * FROM pg.public.{table}) TO '{output}' "
            "(FORMAT parquet, COMPRESSION zstd)"
        )
        return
    derived = [key.split("=", 1) for key in keys if "=" in key]
    select = ", ".join(["*"] + [f"{expression} AS {name}" for name, expression in derived])
    names = ", ".join(key.split("=", 1)[0] for key in keys)
    con.execute(
        f"COPY (SELECT {select} FROM pg.public.{table}) TO '{output}' "
        f"(FORMAT parquet, COMPRESSION zstd, PARTITION_BY ({names}), "
        "WRITE_PARTITION_COLUMNS true, OVERWRITE)"
    )


if __name__ == "__main__":
    main()
