#!/usr/bin/env python3
"""Compares a Parquet export with PostgreSQL, value for value, through two independent readers
(pyarrow and DuckDB). Exit status 0 when every table matches, 1 otherwise.

    compare.py --dsn postgres://... --dir ./etl-out --tables notes,currencies

For each table: the Parquet column names are the PostgreSQL names byte for byte, NOT NULL
columns are REQUIRED, the row counts match, and every value equals PostgreSQL's: decimals as
decimals (never floats), floats bit-exact (NaN, +-Infinity, -0.0), timestamps to the
microsecond, jsonb and arrays as JSON equal to PostgreSQL's own to_json.

A table with row versions (a cursor: the `_etl_batch` and `_etl_deleted` columns after its
own; only key columns REQUIRED, deletions leave the others NULL) is read as the README says:
each key's version of the largest `_etl_batch`, unless that version is a deletion.
"""

import argparse
import datetime as dt
import decimal
import json
import math
import os
import sys
import uuid

import duckdb
import psycopg
import pyarrow.dataset as ds
import pyarrow.parquet as pq

MAX_REPORTED = 10


def column_kinds(conn, schema, table):
    """[(name, kind, element_kind, not_null)] in column order."""
    rows = conn.execute(
        """
        SELECT a.attname, a.atttypid, a.attnotnull
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        (schema, table),
    ).fetchall()
    out = []
    for name, type_oid, not_null in rows:
        # A domain (over a domain, ...) is its base type, NOT NULL if any of them says so.
        while True:
            typname, typtype, category, base, typnotnull, elem, elem_typtype = conn.execute(
                """
                SELECT t.typname, t.typtype, t.typcategory, t.typbasetype, t.typnotnull,
                       coalesce(et.typname, ''), et.typtype
                FROM pg_type t
                LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
                WHERE t.oid = %s
                """,
                (type_oid,),
            ).fetchone()
            not_null = not_null or typnotnull
            if typtype != "d":
                break
            type_oid = base
        if category == "A":
            out.append((name, "array", scalar_kind(elem.lstrip("_"), elem_typtype), not_null))
        else:
            kind = scalar_kind(typname, typtype)
            # Enums and types without a mapping are compared as PostgreSQL's text of them.
            if kind == "text" and typname not in TEXT_TYPES:
                kind = "cast-text"
            out.append((name, kind, None, not_null))
    return out


TEXT_TYPES = {"text", "varchar", "bpchar", "name", "citext"}


def scalar_kind(typname, typtype):
    if typtype == "e":
        return "text"
    return {
        "int2": "int", "int4": "int", "int8": "int",
        "float4": "float", "float8": "float",
        "numeric": "decimal", "bool": "bool",
        "text": "text", "varchar": "text", "bpchar": "text", "name": "text", "citext": "text",
        "uuid": "uuid", "date": "date", "timestamp": "timestamp", "timestamptz": "timestamptz",
        "time": "time", "json": "json", "jsonb": "json", "bytea": "bytes",
    }.get(typname, "text")


def primary_key(conn, schema, table):
    rows = conn.execute(
        """
        SELECT a.attname FROM pg_index i
        JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
        WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary ORDER BY k.ord
        """,
        (schema, table),
    ).fetchall()
    return [r[0] for r in rows]


def quote(ident):
    return '"' + ident.replace('"', '""') + '"'


def parse_json(text):
    return json.loads(text, parse_float=decimal.Decimal)


def canonical_time(kind, value):
    if isinstance(value, str):
        if kind == "date":
            return dt.date.fromisoformat(value)
        if kind == "time":
            return dt.time.fromisoformat(value)
        return dt.datetime.fromisoformat(value)
    return value


def canonical_json_element(kind, value):
    if value is None:
        return None
    if kind in ("timestamp", "timestamptz", "date", "time") and isinstance(value, str):
        return canonical_time(kind, value)
    if kind == "float" and isinstance(value, (int, decimal.Decimal)):
        return ("float", float(value), math.copysign(1.0, float(value)))
    if kind == "float" and isinstance(value, str):
        return ("float", value)
    if kind == "json":
        return json.dumps(value, sort_keys=True, default=str)
    return value


def canonical(kind, element_kind, value, side):
    """A value both sides can be compared on exactly; raises on a type that cannot be right."""
    if value is None:
        return None
    if kind == "float":
        if not isinstance(value, float):
            raise TypeError(f"{side}: expected a float, got {type(value).__name__}")
        if math.isnan(value):
            return ("nan",)
        return (value, math.copysign(1.0, value))
    if kind == "decimal":
        # Exact as DECIMAL, or as exact decimal text (`numeric = "string"`), never rounded.
        if isinstance(value, str):
            if "e" in value.lower() and value not in ("NaN",):
                raise TypeError(f"{side}: decimal text in exponent notation: {value!r}")
            value = decimal.Decimal(value)
        if not isinstance(value, decimal.Decimal):
            raise TypeError(f"{side}: expected a Decimal, got {type(value).__name__} {value!r}")
        return ("nan",) if value.is_nan() else value
    if kind == "decimal-as-float":
        # The documented lossy opt-in (`numeric = "f64"`): the nearest double.
        return float(value)
    if kind == "uuid":
        if isinstance(value, (bytes, bytearray)):
            return str(uuid.UUID(bytes=bytes(value)))
        return str(value).lower()
    if kind == "bytes":
        return bytes(value)
    if kind in ("timestamp", "timestamptz", "date", "time"):
        return canonical_time(kind, value)
    if kind == "json":
        return json.dumps(parse_json(value) if isinstance(value, str) else value, sort_keys=True, default=str)
    if kind == "array":
        items = parse_json(value) if isinstance(value, str) else value
        if not isinstance(items, list):
            raise TypeError(f"{side}: expected a JSON array, got {value!r}")
        return tuple(canonical_json_element(element_kind, v) for v in items)
    return value


def pg_select(conn, schema, table, kinds, key):
    exprs = []
    for name, kind, _, _ in kinds:
        if kind == "array":
            exprs.append(f"to_json({quote(name)})::text")
        elif kind == "json":
            exprs.append(f"{quote(name)}::text")
        elif kind == "cast-text":
            exprs.append(f"{quote(name)}::text")
        else:
            exprs.append(quote(name))
    order = ", ".join(quote(k) for k in key) if key else "1"
    sql = f"SELECT {', '.join(exprs)} FROM {quote(schema)}.{quote(table)} ORDER BY {order}"
    return conn.execute(sql).fetchall()


def compare_rows(label, kinds, key_idx, expected, actual, problems):
    if len(expected) != len(actual):
        problems.append(f"{label}: {len(actual)} rows, PostgreSQL has {len(expected)}")
        return
    for row_no, (pg_row, pq_row) in enumerate(zip(expected, actual)):
        for col, (name, kind, element_kind, _) in enumerate(kinds):
            got_kind = kind
            if kind == "decimal" and isinstance(pq_row[col], float):
                got_kind = "decimal-as-float"
            try:
                want = canonical(got_kind, element_kind, pg_row[col], "postgres")
                got = canonical(got_kind, element_kind, pq_row[col], label)
            except (TypeError, ValueError) as e:
                problems.append(f"{label}: column {name}, row {row_no}: {e}")
                continue
            if want != got:
                where = ", ".join(f"{kinds[i][0]}={pg_row[i]!r}" for i in key_idx) or f"row {row_no}"
                problems.append(
                    f"{label}: column {name} at {where}: parquet {pq_row[col]!r} != postgres {pg_row[col]!r}"
                )
            if len(problems) > MAX_REPORTED:
                return


def current_version(table_dir):
    """Reads as a manifest reader does: an S3 export keeps versions (`v=<run id>/`) beside the
    table's `_manifest.json`, which names the current one; a local export is the directory."""
    manifest_path = os.path.join(table_dir, "_manifest.json")
    if os.path.exists(manifest_path):
        with open(manifest_path) as f:
            version = json.load(f).get("version")
        if version:
            return os.path.join(table_dir, version)
    return table_dir


def manifest(table_dir):
    path = os.path.join(table_dir, "_manifest.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


# An identity partition key's type, from its column's declared type in the manifest: its
# files do not hold the column (it is in the directory names only, as Hive writes it).
KEY_TYPES = {"boolean": "bool", "smallint": "int16", "integer": "int32", "bigint": "int64"}
DUCK_TYPES = {"bool": "BOOLEAN", "int16": "SMALLINT", "int32": "INTEGER", "int64": "BIGINT", "string": "VARCHAR"}


def key_type(manifest, column):
    sql_type = next((c["sql_type"] for c in manifest.get("columns", []) if c["name"] == column), "text")
    return KEY_TYPES.get(sql_type, "string")


def derived_key(transform, value):
    """What a derived partition key must be for a column value: the UTC day, month or year."""
    if value is None:
        return None
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    return value.strftime({"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}[transform])


def check_derived_keys(qualified, names, partition_keys, arrow_table, problems):
    for k in partition_keys:
        if k["transform"] == "identity":
            continue
        values = arrow_table.column(k["column"]).to_pylist()
        keys = arrow_table.column(k["name"]).to_pylist()
        for value, got in zip(values, keys):
            want = derived_key(k["transform"], value)
            if got != want:
                problems.append(f"{qualified}: {k['column']} = {value!r} is in partition {k['name']}={got!r}, expected {want!r}")
                if len(problems) > MAX_REPORTED:
                    return


VERSION_COLUMNS = ["_etl_batch", "_etl_deleted"]


def current_rows(arrow_table, key):
    """The rows of a table with row versions, as pyarrow can compute them: per key, the
    version of the largest `_etl_batch`, dropped if it is a deletion."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not key:
        raise ValueError("row versions need a primary key")
    ordered = arrow_table.sort_by([(k, "ascending") for k in key] + [("_etl_batch", "descending")])
    keys = list(zip(*(ordered.column(k).to_pylist() for k in key)))
    first = [i for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]
    latest = ordered.take(pa.array(first, type=pa.int64()))
    return latest.filter(pc.invert(latest.column("_etl_deleted")))


def check_table(conn, directory, spec, problems):
    # `table` or `schema.table`, or `table=dir` to compare a PostgreSQL table (an oracle query's
    # result) with the Parquet files of another name.
    qualified, _, dir_name = spec.partition("=")
    schema, _, table = qualified.rpartition(".")
    schema = schema or "public"
    kinds = column_kinds(conn, schema, table)
    if not kinds:
        problems.append(f"{qualified}: no such table in PostgreSQL")
        return 0
    key = primary_key(conn, schema, table)
    names = [k[0] for k in kinds]
    key_idx = [names.index(k) for k in key]
    table_dir = os.path.join(directory, dir_name or (qualified if schema != "public" else table))
    table_dir = current_version(table_dir)
    table_manifest = manifest(table_dir)
    partition_keys = table_manifest.get("partition_keys") or []
    path_only = [k["column"] for k in partition_keys if k["transform"] == "identity"]
    files = sorted(
        os.path.relpath(os.path.join(root, f), table_dir)
        for root, dirs, names in os.walk(table_dir)
        for f in names
        if f.endswith(".parquet") and not f.startswith((".", "_"))
    )
    if not files:
        problems.append(f"{qualified}: no Parquet files in {table_dir}")
        return 0
    # An empty partitioned table is one schema file at the table's top, with every column: read
    # as a plain table (there is no partition directory to type).
    laid_out = bool(partition_keys) and any(os.sep in f for f in files)

    # Schema: names byte for byte, NOT NULL -> REQUIRED (key columns only, with row versions);
    # an identity partition key's column is in the directory names only. (An empty partitioned
    # table is one schema file at the root, with every column.)
    versioned = pq.ParquetFile(os.path.join(table_dir, files[0])).schema_arrow.names[-2:] == VERSION_COLUMNS
    for f in files:
        schema_pq = pq.ParquetFile(os.path.join(table_dir, f)).schema_arrow
        in_files = [n for n in names if n not in path_only or os.sep not in f]
        expected_names = in_files + VERSION_COLUMNS if versioned else in_files
        if schema_pq.names != expected_names:
            problems.append(f"{qualified}/{f}: columns {schema_pq.names}, expected {expected_names}")
        for name, _, _, not_null in kinds:
            if name not in schema_pq.names:
                continue
            field = schema_pq.field(name)
            required = not_null and (not versioned or name in key)
            if field.nullable == required:
                problems.append(
                    f"{qualified}/{f}: column {name} is {'OPTIONAL' if field.nullable else 'REQUIRED'} "
                    f"but NOT NULL is {not_null} in PostgreSQL"
                )

    expected = pg_select(conn, schema, table, kinds, key)
    # Hive has no empty partition value: an identity key's '' is in the NULL partition, and
    # Hive-partition readers read it as NULL (documented; the run warns).
    identity_text = [
        names.index(column) for column in path_only if key_type(table_manifest, column) == "string"
    ]
    if identity_text:
        expected = [
            tuple(None if i in identity_text and v == "" else v for i, v in enumerate(row))
            for row in expected
        ]
    if not key:
        expected_sorted = sorted(expected, key=repr)
    else:
        expected_sorted = expected

    # Reader 1: pyarrow (Hive partitions typed as the manifest says: an identity key as its
    # column, a derived key as text).
    if laid_out:
        import pyarrow as pa

        partition_schema = pa.schema(
            [
                (k["name"], key_type(table_manifest, k["column"]) if k["transform"] == "identity" else pa.string())
                for k in partition_keys
            ]
        )
        partitioning = ds.partitioning(partition_schema, flavor="hive")
        arrow_table = ds.dataset(table_dir, format="parquet", partitioning=partitioning).to_table()
    else:
        arrow_table = ds.dataset(table_dir, format="parquet").to_table()
    if versioned:
        arrow_table = current_rows(arrow_table, key)
    if key:
        arrow_table = arrow_table.sort_by([(k, "ascending") for k in key])
    columns = [arrow_table.column(n).to_pylist() for n in names]
    rows = list(zip(*columns)) if columns else []
    if not key:
        rows = sorted(rows, key=repr)
    compare_rows(f"{qualified} (pyarrow)", kinds, key_idx, expected_sorted, rows, problems)
    if laid_out:
        check_derived_keys(qualified, names, partition_keys, arrow_table, problems)

    # Reader 2: DuckDB.
    select = ", ".join(quote(n) for n in names)
    order = " ORDER BY " + ", ".join(quote(k) for k in key) if key else ""
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    if laid_out:
        glob = os.path.join(table_dir, "**", "*.parquet").replace("'", "''")
        hive_types = ", ".join(
            f"'{f.name}': '{DUCK_TYPES.get(str(f.type), 'VARCHAR')}'" for f in partition_schema
        )
        source = f"read_parquet('{glob}', hive_partitioning = true, hive_types = {{{hive_types}}})"
    else:
        glob = os.path.join(table_dir, "*.parquet").replace("'", "''")
        source = f"read_parquet('{glob}')"
    if versioned:
        source = latest_versions(source, key)
    duck_rows = duck.execute(f"SELECT {select} FROM {source}{order}").fetchall()
    if not key:
        duck_rows = sorted(duck_rows, key=repr)
    compare_rows(f"{qualified} (duckdb)", kinds, key_idx, expected_sorted, duck_rows, problems)
    if path_only and laid_out:
        check_default_reads(qualified, (table_dir, table_manifest, path_only), (kinds, key, key_idx), expected_sorted, versioned, problems)
    return len(expected)


def latest_versions(source, key):
    """The README's query: each key's version of the largest `_etl_batch`, unless a deletion."""
    keys = ", ".join(quote(k) for k in key)
    return (
        f"(SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY _etl_batch DESC) AS _etl_rank "
        f"FROM {source}) WHERE _etl_rank = 1 AND NOT _etl_deleted"
    )


def check_default_reads(qualified, table, columns, expected, versioned, problems):
    """pyarrow's and DuckDB's hive reads with no types given: each infers the identity keys'
    types from the directory names (pyarrow: text or int32; DuckDB: its own guess), so their
    values are cast to the columns' types before they are compared."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table_dir, table_manifest, path_only = table
    kinds, key, key_idx = columns
    names = [k[0] for k in kinds]
    arrow_table = pq.read_table(table_dir)
    # Keys come as dictionaries (pyarrow's default), which it cannot sort with NULLs among them.
    for index, field in enumerate(arrow_table.schema):
        if pa.types.is_dictionary(field.type):
            arrow_table = arrow_table.set_column(index, field.name, pc.cast(arrow_table.column(index), field.type.value_type))
    for column in path_only:
        index = arrow_table.schema.get_field_index(column)
        values = pc.cast(pc.cast(arrow_table.column(column), pa.string()), key_type(table_manifest, column))
        arrow_table = arrow_table.set_column(index, column, values)
    if versioned:
        arrow_table = current_rows(arrow_table, key)
    if key:
        arrow_table = arrow_table.sort_by([(k, "ascending") for k in key])
    rows = list(zip(*(arrow_table.column(n).to_pylist() for n in names)))
    if not key:
        rows = sorted(rows, key=repr)
    compare_rows(f"{qualified} (pyarrow, default hive read)", kinds, key_idx, expected, rows, problems)

    glob = os.path.join(table_dir, "**", "*.parquet").replace("'", "''")
    select = ", ".join(
        f"CAST({quote(n)} AS {DUCK_TYPES[key_type(table_manifest, n)]}) AS {quote(n)}" if n in path_only else quote(n)
        for n in names
    )
    source = f"read_parquet('{glob}', hive_partitioning = true)"
    if versioned:
        source = latest_versions(source, key)
    order = " ORDER BY " + ", ".join(quote(k) for k in key) if key else ""
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    duck_rows = duck.execute(f"SELECT {select} FROM {source}{order}").fetchall()
    if not key:
        duck_rows = sorted(duck_rows, key=repr)
    compare_rows(f"{qualified} (duckdb, default hive read)", kinds, key_idx, expected, duck_rows, problems)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument(
        "--tables",
        required=True,
        help="comma-separated: table, schema.table outside public, or table=dir to compare a table with another directory",
    )
    args = parser.parse_args()

    problems = []
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET intervalstyle = 'iso_8601'")
        conn.execute("SET extra_float_digits = 3")
        for table in [t for t in args.tables.split(",") if t]:
            before = len(problems)
            rows = check_table(conn, args.dir, table, problems)
            status = "ok" if len(problems) == before else "MISMATCH"
            print(f"interop {table}: {rows} rows, pyarrow and duckdb: {status}")
    for p in problems[:MAX_REPORTED]:
        print("  " + p, file=sys.stderr)
    if len(problems) > MAX_REPORTED:
        print(f"  ... and more ({len(problems)} shown up to {MAX_REPORTED})", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
