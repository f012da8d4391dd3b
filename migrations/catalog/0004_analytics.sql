-- Cross-tenant analytics for the operator (GET /admin/analytics). Figures that live in
-- tenant storage (users, projects) are collected into tenant_stats by the
-- analytics_refresh job, which then refreshes the materialized views; the request path
-- reads only the views.
CREATE TABLE tenantd.tenant_stats (
    tenant_id uuid PRIMARY KEY REFERENCES tenantd.tenants (id) ON DELETE CASCADE,
    users bigint NOT NULL,
    projects bigint NOT NULL,
    collected_at timestamptz NOT NULL DEFAULT now()
);

-- Closed months, written by the usage_rollup job: a billing record that survives the
-- tenant's deletion (tenantd.usage rows go with their tenant).
CREATE TABLE tenantd.usage_monthly (
    tenant_id uuid NOT NULL,
    month date NOT NULL,
    slug text NOT NULL,
    plan text NOT NULL,
    api_calls bigint NOT NULL,
    users bigint,
    projects bigint,
    rolled_up_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, month)
);

CREATE MATERIALIZED VIEW tenantd.analytics_tenants AS
SELECT t.id, t.slug, t.plan, t.status, t.isolation, t.server, t.created_at,
       s.users, s.projects, s.collected_at,
       COALESCE(u.api_calls, 0) AS api_calls_month,
       now() AS refreshed_at
FROM tenantd.tenants t
LEFT JOIN tenantd.tenant_stats s ON s.tenant_id = t.id
LEFT JOIN tenantd.usage u ON u.tenant_id = t.id
    AND u.month = date_trunc('month', now() AT TIME ZONE 'UTC')::date
WITH DATA;
CREATE UNIQUE INDEX analytics_tenants_id_idx ON tenantd.analytics_tenants (id);

-- API calls per month: closed months from the roll-up (deleted tenants included), the
-- others from the live counters.
CREATE MATERIALIZED VIEW tenantd.analytics_usage AS
SELECT x.month, count(DISTINCT x.tenant_id) AS tenants, sum(x.api_calls)::bigint AS api_calls,
       now() AS refreshed_at
FROM (
    SELECT m.tenant_id, m.month, m.api_calls FROM tenantd.usage_monthly m
    UNION ALL
    SELECT u.tenant_id, u.month, u.api_calls FROM tenantd.usage u
    WHERE NOT EXISTS (SELECT 1 FROM tenantd.usage_monthly m
                      WHERE m.tenant_id = u.tenant_id AND m.month = u.month)
) x
GROUP BY x.month
WITH DATA;
CREATE UNIQUE INDEX analytics_usage_month_idx ON tenantd.analytics_usage (month);

-- When the views were last refreshed (one row).
CREATE MATERIALIZED VIEW tenantd.analytics_meta AS SELECT now() AS refreshed_at WITH DATA;
