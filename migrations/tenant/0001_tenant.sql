-- One tenant's tables. The same file serves every isolation: it runs with search_path
-- set to the tenant's schema (schema, database) or to the shared "pool" schema. Every
-- table carries tenant_id and FORCEs row-level security on app.tenant_id, so a
-- transaction without a tenant setting sees no rows and can write none.
CREATE TABLE users (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL,
    role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX users_email_idx ON users (tenant_id, lower(email));
CREATE INDEX users_list_idx ON users (tenant_id, created_at DESC, id DESC);

CREATE TABLE projects (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    name text NOT NULL,
    description text,
    status text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX projects_list_idx ON projects (tenant_id, created_at DESC, id DESC);

CREATE TABLE audit_logs (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid,
    id uuid NOT NULL DEFAULT gen_random_uuid() PRIMARY KEY,
    actor_id uuid,
    action text NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    entity_type text NOT NULL,
    entity_id uuid NOT NULL,
    old_values jsonb,
    new_values jsonb,
    ip text,
    user_agent text,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX audit_logs_list_idx ON audit_logs (tenant_id, created_at DESC, id DESC);

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['users', 'projects', 'audit_logs'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I USING '
                       '(tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid) '
                       'WITH CHECK '
                       '(tenant_id = NULLIF(current_setting(''app.tenant_id'', true), '''')::uuid)', t);
    END LOOP;
END
$$;

-- Called first in every authenticated transaction: the token's user must still exist
-- (else SQLSTATE TD401) and hold at least p_min (else TD403). Returns the user's role.
CREATE FUNCTION tenant_guard(p_user uuid, p_min text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r text;
    ranks constant text[] := ARRAY['member', 'admin', 'owner'];
BEGIN
    SELECT u.role INTO r FROM users u WHERE u.id = p_user;
    IF r IS NULL THEN
        RAISE EXCEPTION 'user does not exist' USING ERRCODE = 'TD401';
    END IF;
    IF p_min IS NOT NULL AND array_position(ranks, r) < array_position(ranks, p_min) THEN
        RAISE EXCEPTION 'role too low' USING ERRCODE = 'TD403';
    END IF;
    RETURN r;
END
$$;
