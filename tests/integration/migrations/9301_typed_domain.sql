-- A table whose columns use types the tenant migrations create themselves (an enum and a
-- domain): each storage has its own copy of the type, in its own schema.
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE DOMAIN short_code AS text CHECK (length(VALUE) <= 8);

CREATE TABLE moods (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL,
    mood mood NOT NULL DEFAULT 'happy',
    code short_code,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id)
);

-- a foreign key column whose name holds a double quote: its embed is named by"who
CREATE TABLE notes (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    "by""who_id" uuid,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, "by""who_id") REFERENCES moods (tenant_id, id)
);
