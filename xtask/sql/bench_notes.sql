-- The single-large-file S3 benchmark: notes whose bodies hold ~:mb MB of random bytes as
-- base64 text (zstd brings it back to about that size in Parquet), so that the table is one
-- large Parquet file and its upload many multipart parts.
--   psql -v mb=2048 -f bench_notes.sql
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgcrypto;
BEGIN;
DROP TABLE IF EXISTS notes;
\ir notes.sql
-- 12 KB of random bytes a row, 16 KB of base64 text, stored as it is (it does not compress).
ALTER TABLE notes ALTER COLUMN body SET STORAGE EXTERNAL;
INSERT INTO notes (purchase_order_id, title, body, status, "type", created_at, updated_at)
SELECT NULL, 'Note ' || i,
       encode(gen_random_bytes(1024) || gen_random_bytes(1024) || gen_random_bytes(1024)
              || gen_random_bytes(1024) || gen_random_bytes(1024) || gen_random_bytes(1024)
              || gen_random_bytes(1024) || gen_random_bytes(1024) || gen_random_bytes(1024)
              || gen_random_bytes(1024) || gen_random_bytes(1024) || gen_random_bytes(1024),
              'base64'),
       'open', 'comment', timestamp '2020-02-29 12:00:00' + i * interval '1 minute', NULL
FROM generate_series(1, (:mb::bigint * 1024 * 1024 / 12288)::int) AS g(i);
COMMENT ON TABLE notes IS :'marker';
COMMIT;
ANALYZE notes;
