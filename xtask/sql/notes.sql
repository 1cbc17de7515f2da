-- The notes table, shared by the demo (demo.sql) and the single-large-file S3 benchmark
-- (bench_notes.sql).
CREATE TABLE notes (
    id                bigserial PRIMARY KEY,
    purchase_order_id bigint REFERENCES purchase_orders (id),
    title             text        NOT NULL,
    body              text,
    status            varchar(16) NOT NULL,
    "type"            text        NOT NULL,
    created_at        timestamp   NOT NULL,
    updated_at        timestamptz
);
