-- The catalog: every tenant, where its storage lives, and the migration ledger.
CREATE SCHEMA IF NOT EXISTS tenantd;

CREATE TABLE tenantd.tenants (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{1,38}[a-z0-9]$'),
    name text NOT NULL,
    plan text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'starter', 'pro', 'enterprise')),
    isolation text NOT NULL CHECK (isolation IN ('pool', 'schema', 'database')),
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    server text NOT NULL DEFAULT 'main',
    subscription_expires_at timestamptz,
    schema_version integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tenants_created_idx ON tenantd.tenants (created_at DESC, id DESC);

-- API calls per tenant and calendar month (UTC), flushed in batches by each instance.
CREATE TABLE tenantd.usage (
    tenant_id uuid NOT NULL REFERENCES tenantd.tenants (id) ON DELETE CASCADE,
    month date NOT NULL,
    api_calls bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, month)
);
