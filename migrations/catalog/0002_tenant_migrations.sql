-- Per-tenant migration summary, kept by `tenantd migrate` and provisioning: the version
-- the tenant's storage is at (schema_version, since 0001), when it was last migrated and
-- how long that took, and the error of its last failed attempt (NULL once it succeeds).
ALTER TABLE tenantd.tenants
    ADD COLUMN migrated_at timestamptz,
    ADD COLUMN migration_ms integer,
    ADD COLUMN migration_error text;

-- Tenants made before versions were recorded were provisioned at the then-latest tenant
-- version, 1; `tenantd migrate` corrects any row from the storage's own ledger.
UPDATE tenantd.tenants SET schema_version = 1 WHERE schema_version = 0;

CREATE INDEX tenants_schema_version_idx ON tenantd.tenants (schema_version);
CREATE INDEX tenants_migration_error_idx ON tenantd.tenants (id)
    WHERE migration_error IS NOT NULL;
