-- purchase_orders, the table the demo, its tasks and the benchmark share: 16 columns of the
-- usual types. The primary key is added by the caller after loading (faster bulk loads).
CREATE TABLE purchase_orders (
    id              bigserial,
    uuid            uuid          NOT NULL,
    "type"          varchar(32)   NOT NULL,
    status          varchar(32),
    title           text,
    body            text,
    amount          numeric(12,2),
    conversion_rate numeric(18,8),
    tax_rate        double precision,
    quantity        integer,
    is_active       boolean,
    tags            text[],
    options         jsonb,
    created_at      timestamp     NOT NULL,
    updated_at      timestamptz,
    due_date        date
);
