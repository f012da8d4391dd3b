-- A small domain served by the resource engine (SPEC §7), for the resource tests:
-- numeric, date, jsonb and array columns, a unique and a CHECK constraint, composite
-- foreign keys (one restricting deletes, one cascading, one setting null), a private and
-- a readonly column, an admin-write table with a plan max, and a hidden table.
CREATE TABLE customers (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    email varchar(40),
    score integer,
    vip boolean NOT NULL DEFAULT false,
    secret text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT customers_email_unique UNIQUE (tenant_id, email)
);
COMMENT ON COLUMN customers.secret IS 'tenantd {"private": true}';

CREATE TABLE invoices (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    customer_id uuid NOT NULL,
    referrer_id uuid,
    amount numeric(14, 4) NOT NULL CONSTRAINT invoices_amount_positive CHECK (amount >= 0),
    due date,
    meta jsonb,
    tags text[],
    state text NOT NULL DEFAULT 'open',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id),
    FOREIGN KEY (tenant_id, referrer_id) REFERENCES customers (tenant_id, id)
        ON DELETE SET NULL (referrer_id)
);
COMMENT ON COLUMN invoices.state IS 'tenantd {"readonly": true}';

CREATE TABLE line_items (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    invoice_id uuid NOT NULL,
    qty smallint NOT NULL,
    price double precision,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, invoice_id) REFERENCES invoices (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE settings (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    key text NOT NULL,
    value jsonb,
    PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE settings IS 'tenantd {"write": "admin", "max": {"free": 2}}';

CREATE TABLE ledger_notes (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    note text,
    PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE ledger_notes IS 'tenantd {"expose": false}';

-- every column has a default: a POST of {} (or of [{}, {}]) inserts default rows
CREATE TABLE pings (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    note text,
    PRIMARY KEY (tenant_id, id)
);
