"""Spark reads an export back and it equals PostgreSQL, value for value.

usage: spark_read.py --dsn URL --dir OUTPUT --table NAME:KEY[:CURSOR] ...

Each table is read as Spark reads a table directory (`spark.read.parquet`, Hive partitions
discovered from `name=value/` directories, files starting with `_` or `.` skipped). With a
CURSOR (incremental batches beside the full export), the latest version of each KEY is kept.
Values are compared after the conversions each side makes: Spark returns timestamps in the
session's time zone (UTC here), uuids and JSON as strings.
"""
import argparse
import datetime
import decimal
import json
import sys
import uuid

import psycopg
from pyspark.sql import SparkSession, Window
from pyspark.sql import functions as F

parser = argparse.ArgumentParser()
parser.add_argument("--dsn", required=True)
parser.add_argument("--dir", required=True)
parser.add_argument("--table", action="append", required=True)
args = parser.parse_args()

spark = (
    SparkSession.builder.master("local[2]")
    .config("spark.ui.enabled", "false")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.ui.showConsoleProgress", "false")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")


def normal(value):
    """One comparable form for a value from either side."""
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.timezone.utc).replace(tzinfo=None)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, decimal.Decimal):
        return value.normalize()
    return value


failed = False
for spec in args.table:
    name, key, *cursor = spec.split(":")
    with open(f"{args.dir}/{name}/_manifest.json") as f:
        manifest = json.load(f)
    # Hive has no empty partition value: an identity key's '' is in the NULL partition, and
    # Spark reads the partition's value (README, "Partitions").
    identity_keys = {
        k["column"] for k in manifest.get("partition_keys", []) if k["transform"] == "identity"
    }
    with psycopg.connect(args.dsn) as conn:
        cur = conn.execute(f"SELECT * FROM {name} ORDER BY {key}")
        columns = [d.name for d in cur.description]
        json_columns = {d.name for d in cur.description if d.type_code in (114, 3802, 1009)}
        expected = [
            tuple(
                None if c in identity_keys and v == "" else normal(v)
                for c, v in zip(columns, row)
            )
            for row in cur
        ]

    df = spark.read.option("basePath", f"{args.dir}/{name}").parquet(f"{args.dir}/{name}")
    if "_etl_batch" in df.columns:
        # The README's query: each key's latest version, unless it is a deletion.
        latest = Window.partitionBy(key).orderBy(F.col("_etl_batch").desc())
        df = df.withColumn("_n", F.row_number().over(latest)).where("_n = 1 AND NOT _etl_deleted").drop("_n")
    # An identity key is in the directory names only; Spark's discovery infers its type from
    # the values (README, "Partitions"), so it is cast to the column's declared type.
    spark_types = {"boolean": "boolean", "smallint": "smallint", "integer": "int", "bigint": "bigint"}
    declared = {c["name"]: c["sql_type"] for c in manifest.get("columns", [])}
    selected = [
        F.col(c).cast(spark_types.get(declared.get(c), "string")).alias(c) if c in identity_keys else F.col(c)
        for c in columns
    ]
    rows = df.select(*selected).orderBy(key).collect()
    got = []
    for row in rows:
        values = []
        for column, value in zip(columns, row):
            if column in json_columns and isinstance(value, str):
                value = json.loads(value)
            values.append(normal(value))
        got.append(tuple(values))
    if got != expected:
        failed = True
        print(f"{name}: Spark read {len(got)} rows, PostgreSQL has {len(expected)}")
        for g, e in zip(got, expected):
            if g != e:
                print(f"  first difference:\n    spark    {g}\n    postgres {e}")
                break
    else:
        print(f"spark {name}: {len(got)} rows equal, schema {df.schema.simpleString()[:300]}")

sys.exit(1 if failed else 0)
