-- The operator console: API calls per tenant and UTC day (a tenant's chart for the month),
-- written beside tenantd.usage by each instance's usage flush.
CREATE TABLE tenantd.usage_daily (
    tenant_id uuid NOT NULL REFERENCES tenantd.tenants (id) ON DELETE CASCADE,
    day date NOT NULL,
    api_calls bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant_id, day)
);
