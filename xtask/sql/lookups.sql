-- The lookup tables of the procurement app: currencies (with a conversion rate to USD and its
-- history) and tax rates per order type. Loaded by demo.sql and bench_seed.sql; the demo's
-- tasks read them. Deterministic given the caller's setseed.
DROP TABLE IF EXISTS currencies, tax_rates CASCADE;

CREATE TABLE currencies (
    id                 serial PRIMARY KEY,
    code               varchar(8)    NOT NULL UNIQUE,
    name               text          NOT NULL,
    symbol             text,
    conversion_rate    numeric(18,8) NOT NULL,
    conversion_history jsonb,
    is_active          boolean       NOT NULL DEFAULT true,
    updated_at         timestamptz   NOT NULL
);

INSERT INTO currencies (code, name, symbol, conversion_rate, conversion_history, is_active, updated_at)
SELECT code, name, symbol, rate, history, active, ts
FROM (VALUES ('USD', 'US Dollar', '$', 1.0),
             ('EUR', 'Euro', '€', 1.08123456),
             ('GBP', 'Pound Sterling', '£', 1.26543210),
             ('JPY', 'Yen', '¥', 0.00671234),
             ('CHF', 'Swiss Franc', NULL, 1.13000001)) AS v(code, name, symbol, rate),
     LATERAL (SELECT jsonb_build_array(jsonb_build_object('date', '2026-01-01', 'rate', rate),
                                       jsonb_build_object('date', '2026-06-01', 'rate', round(rate * 1.01, 8)))
                     AS history,
                     true AS active,
                     timestamptz '2026-11-01 09:30:00.123456+00' AS ts) h
UNION ALL
SELECT 'X' || lpad(i::text, 4, '0'),
       'Synthetic currency ' || i,
       CASE WHEN i % 7 = 0 THEN NULL ELSE chr(945 + i % 24) END,
       round((0.001 + random() * 5)::numeric, 8),
       CASE WHEN i % 10 = 0 THEN NULL
            ELSE jsonb_build_object('source', 'ecb', 'samples', jsonb_build_array(round(random()::numeric, 6), null, 1e-7),
                                    'nested', jsonb_build_object('ok', i % 2 = 0, 'note', E'tab\there "quoted" ünï')) END,
       i % 13 <> 0,
       timestamptz '2024-01-01 00:00:00+00' + (i * interval '37 minutes 11.000007 seconds')
FROM generate_series(1, 2995) AS g(i);

-- Tax per order type; 'dropship' has none (a missing lookup the tasks must handle).
CREATE TABLE tax_rates (
    order_type varchar(32)  PRIMARY KEY,
    rate       numeric(5,4) NOT NULL
);
INSERT INTO tax_rates VALUES ('standard', 0.0750), ('blanket', 0.1900), ('contract', 0.0000), ('planned', 0.2100);
