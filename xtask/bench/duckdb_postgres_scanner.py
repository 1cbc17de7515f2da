"""DuckDB's postgres scanner as a benchmark peer: one table to one zstd Parquet file.

Usage: duckdb_postgres_scanner.py POSTGRES_URL TABLE OUTPUT_FILE

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
    url, table, output = sys.argv[1:4]
    package = os.path.dirname(duckdb_extension_postgres_scanner.__file__)
    (extension,) = glob.glob(
        os.path.join(package, "extensions", "*", "postgres_scanner.duckdb_extension")
    )
    con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
    con.execute(f"LOAD '{extension}'")
    con.execute(f"ATTACH '{url}' AS pg (TYPE postgres, READ_ONLY)")
    con.execute(
        f"COPY (SELECT * FROM pg.public.{table}) TO '{output}' "
        "(FORMAT parquet, COMPRESSION zstd)"
    )


if __name__ == "__main__":
    main()
