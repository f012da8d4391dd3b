-- A small shop for the resource engine's tests (SPEC §7): numeric, date, jsonb, array,
-- boolean and varchar columns; a private and a readonly column; unique and CHECK
-- constraints; composite foreign keys (RESTRICT, CASCADE, SET NULL); an admin-write table
-- with a plan max; a hidden table. No policies: tenantd enables and forces them.
CREATE TABLE customers (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name varchar(20) NOT NULL,
    email text,
    tier smallint NOT NULL DEFAULT 1 CONSTRAINT customers_tier_range CHECK (tier BETWEEN 1 AND 3),
    balance numeric(14, 4) NOT NULL DEFAULT 0,
    vip boolean NOT NULL DEFAULT false,
    birthday date,
    prefs jsonb,
    tags text[],
    seen_at timestamptz[],
    api_key text,
    score integer DEFAULT 7,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, email)
);
COMMENT ON COLUMN customers.api_key IS 'tenantd {"private": true}';
COMMENT ON COLUMN customers.score IS 'tenantd {"readonly": true}';

CREATE TABLE orders (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    customer_id uuid NOT NULL,
    total numeric(12, 2) NOT NULL CHECK (total >= 0),
    placed_on date NOT NULL DEFAULT '2026-01-01',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);

CREATE TABLE order_notes (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    order_id uuid NOT NULL,
    body text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE price_plans (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    code text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE price_plans IS 'tenantd {"write": "admin", "max": {"free": 2}}';

CREATE TABLE ledger_entries (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    amount numeric NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE ledger_entries IS 'tenantd {"expose": false}';
