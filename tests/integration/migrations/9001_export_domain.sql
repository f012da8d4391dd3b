-- A small domain for the export, import and move tests: every kind of column an export
-- must restore exactly, a composite foreign key, a self-reference, a private column, a
-- hidden table and a generated column. No policies: tenantd enables and forces them after
-- each file.
CREATE TABLE st_items (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    label varchar(40) NOT NULL,
    amount numeric(40, 12),
    ratio double precision,
    small real,
    big bigint,
    flag boolean,
    day date,
    at timestamptz,
    local_at timestamp,
    doc jsonb,
    raw json,
    tags text[],
    nums integer[],
    blob bytea,
    secret text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id)
);
COMMENT ON COLUMN st_items.secret IS 'tenantd {"private": true}';

CREATE TABLE st_parts (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    item_id uuid NOT NULL,
    parent_id uuid,
    qty integer NOT NULL CHECK (qty > 0),
    qty_twice integer GENERATED ALWAYS AS (qty * 2) STORED,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, item_id) REFERENCES st_items (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, parent_id) REFERENCES st_parts (tenant_id, id)
);

CREATE TABLE st_hidden (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id bigint GENERATED ALWAYS AS IDENTITY,
    note text NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
COMMENT ON TABLE st_hidden IS 'tenantd {"expose": false}';
