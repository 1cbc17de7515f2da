-- The accounts table, shared by the demo (demo.sql) and the incremental benchmark
-- (bench_accounts.sql); the demo's model exports it incrementally (`cursor = "updated_at"`).
-- A trigger sets updated_at to now() on every change: the transaction's start, which is what
-- makes a late commit carry an earlier cursor than rows committed before it.
CREATE TABLE accounts (
    id          bigint        PRIMARY KEY,
    owner       text          NOT NULL,
    balance     numeric(14,2) NOT NULL,
    updated_at  timestamptz   NOT NULL DEFAULT now()
);
CREATE INDEX accounts_updated_at ON accounts (updated_at);
CREATE OR REPLACE FUNCTION accounts_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_touch();
