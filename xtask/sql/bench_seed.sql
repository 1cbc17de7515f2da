-- The benchmark table: purchase_orders, 16 columns (bigint, uuid, varchar, text, two numerics,
-- float8, int4, bool, text[], jsonb, timestamp, timestamptz, date), ~10 % NULLs in every
-- nullable column. Deterministic (setseed). Same shape as the demo's purchase_orders, so that
-- the committed model exports it, with the lookup tables of the demo's tasks.
--   psql -v rows=1000000 -f bench_seed.sql
\set ON_ERROR_STOP on
\if :{?rows}
\else
  \set rows 1000000
\endif
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SET maintenance_work_mem = '512MB';
SELECT setseed(0.5) \gset

-- The lookups the demo tasks read, so that the bench can time a task too.
\ir lookups.sql

BEGIN;
DROP TABLE IF EXISTS purchase_orders;
-- Created in the loading transaction: with wal_level=minimal nothing is WAL-logged.
\ir purchase_orders.sql

INSERT INTO purchase_orders (id, uuid, "type", status, title, body, amount, conversion_rate, tax_rate,
                             quantity, is_active, tags, options, created_at, updated_at, due_date)
SELECT i,
       md5(i::text || 'bench')::uuid,
       (ARRAY['standard','blanket','contract','planned','dropship'])[1 + (a * 5)::int % 5],
       CASE WHEN z1 < 0.1 THEN NULL
            ELSE (ARRAY['draft','pending_approval','approved','sent','partially_received','received','closed','cancelled'])[1 + (b * 8)::int % 8] END,
       CASE WHEN z2 < 0.1 THEN NULL
            ELSE 'PO-' || lpad(i::text, 8, '0') || ' ' ||
                 (ARRAY['Office supplies','Laptops and docks','Cloud credits','Consulting services','Raw materials',
                        'Packaging','Freight forwarding','Maintenance contract','Marketing print run','Spare parts'])[1 + (c * 10)::int % 10]
                 || ' for ' || (ARRAY['ACME Corp','Globex','Initech','Umbrella','Stark Industries','Wayne Enterprises','Hooli'])[1 + (d * 7)::int % 7] END,
       CASE WHEN z3 < 0.1 THEN NULL
            ELSE substr(repeat('Procurement note: delivery window agreed, invoice to follow, partial shipments allowed. ', 8),
                        1 + (e * 300)::int, 120 + (f * 80)::int) || ' [ref ' || md5(i::text) || ']' END,
       CASE WHEN z4 < 0.1 THEN NULL ELSE round((g * 250000)::numeric, 2) END,
       CASE WHEN z5 < 0.1 THEN NULL ELSE round((0.2 + h * 2)::numeric, 8) END,
       CASE WHEN z6 < 0.1 THEN NULL ELSE (ARRAY[0.0, 0.05, 0.07, 0.19, 0.2, 0.21])[1 + (a * 6)::int % 6] + h / 1000 END,
       CASE WHEN z7 < 0.1 THEN NULL ELSE (b * 5000)::int END,
       CASE WHEN z8 < 0.1 THEN NULL ELSE c < 0.8 END,
       CASE WHEN z9 < 0.1 THEN NULL
            ELSE (ARRAY['urgent','net30','net60','capex','opex','recurring','preferred-vendor','eu','us','apac'])
                 [1 + (d * 9)::int : 1 + (d * 9)::int + (e * 4)::int - 1] END,
       CASE WHEN z10 < 0.1 THEN NULL
            ELSE jsonb_build_object('priority', 1 + (f * 5)::int % 5,
                                    'currency', (ARRAY['USD','EUR','GBP','JPY','CHF'])[1 + (g * 5)::int % 5],
                                    'approver_id', (h * 100000)::int,
                                    'auto_renew', a < 0.3,
                                    'cost_center', 'CC-' || lpad(((b * 999)::int)::text, 3, '0')) END,
       ts,
       CASE WHEN z11 < 0.1 THEN NULL ELSE (ts + (c * 2592000) * interval '1 second')::timestamptz END,
       CASE WHEN z12 < 0.1 THEN NULL ELSE (ts + (d * 90)::int * interval '1 day')::date END
FROM (
    SELECT i,
           random() AS a, random() AS b, random() AS c, random() AS d, random() AS e,
           random() AS f, random() AS g, random() AS h,
           random() AS z1, random() AS z2, random() AS z3, random() AS z4, random() AS z5, random() AS z6,
           random() AS z7, random() AS z8, random() AS z9, random() AS z10, random() AS z11, random() AS z12,
           timestamp '2019-01-01' + (random() * 189216000) * interval '1 second' AS ts
    FROM generate_series(1, :rows) AS g(i)
) s;

ALTER TABLE purchase_orders ADD PRIMARY KEY (id);
SELECT setval(pg_get_serial_sequence('purchase_orders', 'id'), :rows) \gset
COMMIT;

-- The row count in the comment tells the bench whether the table can be reused.
DO $$ BEGIN
  EXECUTE format('COMMENT ON TABLE purchase_orders IS %L',
                 'etl-bench v2 rows=' || (SELECT count(*) FROM purchase_orders));
END $$;
VACUUM (ANALYZE, FREEZE) purchase_orders;
CHECKPOINT;
