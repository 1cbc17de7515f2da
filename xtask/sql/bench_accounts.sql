-- The incremental benchmark table: accounts (the demo's model, cursor `updated_at`, indexed),
-- :rows rows whose cursors spread over the last year.
--   psql -v rows=5000000 -f bench_accounts.sql
\set ON_ERROR_STOP on
\if :{?rows}
\else
  \set rows 5000000
\endif
SET client_min_messages = warning;

BEGIN;
DROP TABLE IF EXISTS accounts CASCADE;
\ir accounts.sql
INSERT INTO accounts (id, owner, balance, updated_at)
SELECT i, 'owner ' || i, (i % 100000) * 1.25, now() - (i % 525600) * interval '1 minute'
FROM generate_series(1, :rows) AS g(i);
COMMIT;

-- The row count in the comment tells the bench whether the table can be reused.
DO $$ BEGIN
  EXECUTE format('COMMENT ON TABLE accounts IS %L',
                 'etl-bench v1 rows=' || (SELECT count(*) FROM accounts));
END $$;
VACUUM (ANALYZE, FREEZE) accounts;
CHECKPOINT;
