-- Restore and clone (src/backup/README.md): what GET /admin/jobs/{id} shows of a job, the
-- record of operator actions, and what the catalog keeps of a deleted tenant so that it
-- can be restored within its plan's window.
ALTER TABLE tenantd.jobs
    ADD COLUMN progress real NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    ADD COLUMN result jsonb,
    ADD COLUMN error jsonb;

-- Who did what to which tenant, and from which moment (restores and clones).
CREATE TABLE tenantd.operator_actions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    action text NOT NULL CHECK (action IN ('restore', 'clone')),
    actor text NOT NULL,
    tenant_id uuid NOT NULL,
    tenant_slug text NOT NULL,
    target_at timestamptz,
    new_slug text,
    job_id uuid,
    status text NOT NULL DEFAULT 'requested'
        CHECK (status IN ('requested', 'succeeded', 'failed')),
    detail jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX operator_actions_tenant_idx ON tenantd.operator_actions (tenant_id, created_at DESC);

-- A deleted tenant's catalog row is gone; this keeps what a restore of it needs to check
-- (its slug, plan window, birth) before a scratch copy of the past is made.
CREATE TABLE tenantd.deleted_tenants (
    id uuid PRIMARY KEY,
    slug text NOT NULL,
    plan text NOT NULL,
    isolation text NOT NULL,
    server text NOT NULL,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deleted_tenants_slug_idx ON tenantd.deleted_tenants (slug, deleted_at DESC);

CREATE FUNCTION tenantd.remember_deleted_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenantd.deleted_tenants (id, slug, plan, isolation, server, created_at)
    VALUES (OLD.id, OLD.slug, OLD.plan, OLD.isolation, OLD.server, OLD.created_at)
    ON CONFLICT (id) DO UPDATE SET slug = EXCLUDED.slug, plan = EXCLUDED.plan,
        deleted_at = now();
    RETURN OLD;
END $$;
CREATE TRIGGER tenants_remember_deleted AFTER DELETE ON tenantd.tenants
    FOR EACH ROW EXECUTE FUNCTION tenantd.remember_deleted_tenant();
