-- Tenant tables become resources (SPEC §7): every table's primary key is (tenant_id, id),
-- so that tables reference each other by (tenant_id, id) and a foreign-key check (which
-- runs as the owner and ignores row-level security) can never reach another tenant's row.
ALTER TABLE users DROP CONSTRAINT users_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE projects DROP CONSTRAINT projects_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE audit_logs DROP CONSTRAINT audit_logs_pkey, ADD PRIMARY KEY (tenant_id, id);

-- projects is served by the resource engine: its §6 contract as constraints.
ALTER TABLE projects
    ADD CONSTRAINT projects_name_length
        CHECK (char_length(name) <= 200 AND name ~ '[^[:space:]]'),
    ADD CONSTRAINT projects_description_length
        CHECK (description IS NULL OR char_length(description) <= 10000);
COMMENT ON TABLE projects IS 'tenantd {"max": {"free": 3, "starter": 10, "pro": 50}}';

-- A plan's row limit, checked before a creation (serialised by an advisory lock):
-- SQLSTATE TDQUO past it.
CREATE FUNCTION tenantd_quota(p_count bigint, p_max bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_count > p_max THEN
        RAISE EXCEPTION 'plan limit reached' USING ERRCODE = 'TDQUO';
    END IF;
END
$$;
