-- The demo database: a slice of a procurement app. purchase_orders has the shape of the
-- benchmark table (16 columns; the currency code sits in options->>'currency'). Deterministic (setseed), with NULLs,
-- numerics, jsonb, arrays and a column named "type".
\set ON_ERROR_STOP on
SET client_min_messages = warning;
SET TimeZone = 'UTC';
SELECT setseed(0.17) \gset

DROP TABLE IF EXISTS notes, purchase_orders, shipments, accounts CASCADE;

\ir lookups.sql

\ir purchase_orders.sql

INSERT INTO purchase_orders (uuid, "type", status, title, body, amount, conversion_rate, tax_rate, quantity,
                             is_active, tags, options, created_at, updated_at, due_date)
SELECT md5(i::text || 'po')::uuid,
       (ARRAY['standard','blanket','contract','planned','dropship'])[1 + i % 5],
       CASE WHEN random() < 0.1 THEN NULL
            ELSE (ARRAY['draft','pending_approval','approved','sent','received','closed','cancelled'])[1 + (random() * 6)::int] END,
       CASE WHEN random() < 0.1 THEN NULL ELSE 'PO-' || lpad(i::text, 6, '0') || ' ' ||
            (ARRAY['Laptops and docks','Cloud credits','Consulting services','Packaging','Spare parts'])[1 + i % 5] END,
       CASE WHEN random() < 0.1 THEN NULL ELSE repeat('Lorem ipsum dolor sit amet. ', 1 + i % 4) || E'\nline two' END,
       CASE WHEN random() < 0.1 THEN NULL ELSE round((random() * 250000)::numeric, 2) END,
       CASE WHEN random() < 0.1 THEN NULL ELSE round((0.2 + random() * 2)::numeric, 8) END,
       CASE WHEN random() < 0.1 THEN NULL ELSE (ARRAY[0.0, 0.05, 0.07, 0.19, 0.2, 0.21])[1 + i % 6] END,
       CASE WHEN random() < 0.1 THEN NULL ELSE (random() * 5000)::int END,
       CASE WHEN random() < 0.1 THEN NULL ELSE random() < 0.8 END,
       CASE WHEN random() < 0.1 THEN NULL
            WHEN i % 17 = 0 THEN ARRAY[]::text[]
            WHEN i % 19 = 0 THEN ARRAY['urgent', NULL, 'capex']
            ELSE (ARRAY['urgent','net30','net60','capex','opex','recurring','eu','us'])[1 + i % 8 : 1 + i % 8 + i % 3] END,
       CASE WHEN random() < 0.1 THEN NULL
            ELSE jsonb_build_object('priority', 1 + i % 5, 'approver_id', (random() * 100000)::int,
                                    'currency', CASE WHEN i % 23 = 0 THEN 'AUD' -- not in currencies
                                                     ELSE (ARRAY['USD','EUR','GBP','JPY','CHF'])[1 + i % 5] END,
                                    'auto_renew', random() < 0.3, 'cost_center', 'CC-' || lpad((i % 999)::text, 3, '0')) END,
       timestamp '2019-01-01' + (random() * 189216000) * interval '1 second',
       CASE WHEN random() < 0.1 THEN NULL ELSE timestamptz '2019-01-01 00:00:00+00' + (random() * 189216000) * interval '1 second' END,
       CASE WHEN random() < 0.1 THEN NULL ELSE date '2019-01-01' + (random() * 2500)::int END
FROM generate_series(1, 5000) AS g(i);

ALTER TABLE purchase_orders ADD PRIMARY KEY (id);

\ir notes.sql

INSERT INTO notes (purchase_order_id, title, body, status, "type", created_at, updated_at)
SELECT CASE WHEN i % 9 = 0 THEN NULL ELSE 1 + (i * 7) % 5000 END,
       'Note ' || i,
       CASE WHEN i % 6 = 0 THEN NULL
            WHEN i % 11 = 0 THEN ''
            ELSE 'Called the supplier about order ' || i || E'. Unicode: 日本語 🚚, control: \x01.' END,
       (ARRAY['open','resolved','archived'])[1 + i % 3],
       (ARRAY['comment','approval','rejection','reminder'])[1 + i % 4],
       timestamp '2020-02-29 12:00:00' + i * interval '1 hour 1.5 seconds',
       CASE WHEN i % 5 = 0 THEN NULL ELSE timestamptz '1969-12-31 23:59:59.999999+00' + i * interval '1 day' END
FROM generate_series(1, 4000) AS g(i);

-- Partitioned by `region, shipped_at:day` (Hive directories): 40 shipping days over four
-- years, some close to midnight UTC (timestamptz is bucketed in UTC), regions that Hive must
-- escape, and NULL and '' keys (both in Hive's default partition).
\ir shipments.sql

INSERT INTO shipments (id, region, shipped_at, carrier_id, weight_kg, delivered)
SELECT i,
       CASE WHEN i % 13 = 0 THEN NULL WHEN i % 97 = 0 THEN ''
            ELSE (ARRAY['eu-west', 'us/east', 'ap:south', 'sa=north 50%'])[1 + i % 4] END,
       CASE WHEN i % 11 = 0 THEN NULL
            ELSE timestamptz '2019-03-01 23:30:00+00' + (i % 40) * interval '37 days 5 hours' + (i % 7) * interval '1 second' END,
       1 + i % 9,
       round((random() * 2000)::numeric, 3),
       CASE WHEN i % 5 = 0 THEN NULL ELSE i % 3 <> 0 END
FROM generate_series(1, 2000) AS g(i);

ANALYZE currencies, tax_rates, purchase_orders, notes, shipments;

-- Exported incrementally (`cursor = "updated_at"`, see accounts.sql).
\ir accounts.sql
INSERT INTO accounts (id, owner, balance, updated_at)
SELECT i, 'owner ' || i, i * 10.25, timestamptz '2024-01-01 00:00:00+00' + i * interval '1 minute'
FROM generate_series(1, 1000) AS g(i);
