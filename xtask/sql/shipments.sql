-- The shipments table, shared by the demo (demo.sql) and the partitioned benchmark
-- (bench_shipments.sql); the demo's model partitions it by `region, shipped_at:day`.
CREATE TABLE shipments (
    id          bigint PRIMARY KEY,
    region      text,
    shipped_at  timestamptz,
    carrier_id  integer     NOT NULL,
    weight_kg   numeric(10,3) NOT NULL,
    delivered   boolean
);
