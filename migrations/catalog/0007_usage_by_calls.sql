-- The tenant list sorted by API calls this month (GET /admin/tenants?sort=api_calls) reads
-- the month's usage rows in this order and stops at the page's size.
CREATE INDEX usage_month_calls_idx ON tenantd.usage (month, api_calls DESC, tenant_id DESC);
