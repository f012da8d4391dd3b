-- A deleted tenant's whole catalog row, as it was at its deletion: a restore of a tenant
-- that lived on a server given by URL takes its row from here (a copy of that server has
-- no catalog of its own). NULL for tenants deleted before this migration.
ALTER TABLE tenantd.deleted_tenants ADD COLUMN last_row jsonb;

CREATE OR REPLACE FUNCTION tenantd.remember_deleted_tenant() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenantd.deleted_tenants (id, slug, plan, isolation, server, created_at, last_row)
    VALUES (OLD.id, OLD.slug, OLD.plan, OLD.isolation, OLD.server, OLD.created_at, to_jsonb(OLD))
    ON CONFLICT (id) DO UPDATE SET slug = EXCLUDED.slug, plan = EXCLUDED.plan,
        server = EXCLUDED.server, last_row = EXCLUDED.last_row, deleted_at = now();
    RETURN OLD;
END $$;
