-- The partitioned benchmark table: shipments (the demo's model, partitioned by
-- `region, shipped_at:day`), :rows rows over ~1,000 days in random heap order, one region per
-- day, so ~1,000 partitions whose rows interleave everywhere; with :regions (e.g. 10), each
-- row's region is one of that many, so ~1,000 x :regions partitions.
--   psql -v rows=5000000 [-v regions=10] -f bench_shipments.sql
\set ON_ERROR_STOP on
\if :{?rows}
\else
  \set rows 5000000
\endif
\if :{?regions}
\else
  \set regions 0
\endif
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SELECT setseed(0.25) \gset

BEGIN;
DROP TABLE IF EXISTS shipments;
\ir shipments.sql
INSERT INTO shipments (id, region, shipped_at, carrier_id, weight_kg, delivered)
SELECT i,
       CASE WHEN :regions > 0 THEN 'region-' || (i::bigint * 7919 % :regions)
            ELSE (ARRAY['eu-west', 'us-east', 'ap-south', 'sa-north'])[1 + d % 4] END,
       timestamptz '2022-01-01 00:00:00+00' + d * interval '1 day' + (random() * 86399) * interval '1 second',
       1 + i % 9,
       round((random() * 2000)::numeric, 3),
       CASE WHEN i % 5 = 0 THEN NULL ELSE i % 3 <> 0 END
FROM (SELECT i, (random() * 999)::int AS d FROM generate_series(1, :rows) AS g(i)) AS s;
COMMIT;

-- The row count (and regions) in the comment tells the bench whether the table can be reused.
SELECT format('COMMENT ON TABLE shipments IS %L',
              'etl-bench v1 rows=' || (SELECT count(*) FROM shipments)
              || CASE WHEN :regions > 0 THEN ' regions=' || :regions ELSE '' END) \gexec
VACUUM (ANALYZE, FREEZE) shipments;
CHECKPOINT;
