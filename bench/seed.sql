-- seed.sql - bulk seeding of the benchmark tenants, run by bench.py as the superuser
-- after tenantd has bootstrapped the catalog and the pool schema, and after
-- bench.migrations holds migrations/tenant/*.sql (text and sha256).
--
-- psql variables: npool, nschema (tenant counts), pwhash (one real argon2id hash).
--
-- Ids are derived from the tenant number n so that pgbench, which has only integer
-- variables, can name a tenant, its schema, its owner and its projects without a lookup:
--   k          = 100000000000 + n                      (12 decimal digits)
--   tenant id  = 00000000-0000-4000-8000-<k>
--   owner id   = 00000000-0000-4000-a000-<k>
--   project j  = <10000000 + j>-0000-4000-9000-<k>     (j = 1..50)
--   schema     = t_00000000000040008000<k>             (tenantd's t_<32 hex of the id>)
-- Tenants 1..npool are pool tenants, npool+1..npool+nschema schema tenants; all on
-- plan enterprise (no project quota, no API budget), status active, server main.
\set ON_ERROR_STOP on
SET client_min_messages = warning;

CREATE TABLE bench.tenants (
    n integer PRIMARY KEY,
    k bigint NOT NULL,
    id uuid NOT NULL,
    user_id uuid NOT NULL,
    isolation text NOT NULL,
    schema text NOT NULL
);
INSERT INTO bench.tenants
SELECT n, 100000000000 + n,
       ('00000000-0000-4000-8000-' || (100000000000 + n))::uuid,
       ('00000000-0000-4000-a000-' || (100000000000 + n))::uuid,
       CASE WHEN n <= :npool THEN 'pool' ELSE 'schema' END,
       CASE WHEN n <= :npool THEN 'pool' ELSE 't_00000000000040008000' || (100000000000 + n) END
FROM generate_series(1, :npool + :nschema) AS n;

CREATE TABLE bench.settings AS SELECT :'pwhash'::text AS pwhash;

-- the catalog rows
INSERT INTO tenantd.tenants (id, slug, name, plan, isolation, status, server, schema_version)
SELECT id, 'bench-' || n, 'Bench tenant ' || n, 'enterprise', isolation, 'active', 'main',
       (SELECT coalesce(max(version), 0) FROM bench.migrations)
FROM bench.tenants;

-- pool tenants: one owner and 50 projects each, in the shared tables (the superuser
-- bypasses row-level security, so tenant_id is given explicitly)
INSERT INTO pool.users (tenant_id, id, email, name, role, password_hash)
SELECT id, user_id, 'owner@bench-' || n || '.example', 'Bench owner', 'owner', :'pwhash'
FROM bench.tenants WHERE isolation = 'pool';

INSERT INTO pool.projects (tenant_id, id, name, description, status, created_at, updated_at)
SELECT t.id, ((10000000 + j) || '-0000-4000-9000-' || t.k)::uuid, 'Project ' || j,
       'Seeded by bench/seed.sql', 'active',
       now() - (51 - j) * interval '1 second', now() - (51 - j) * interval '1 second'
FROM bench.tenants t, generate_series(1, 50) AS j
WHERE t.isolation = 'pool';

-- schema tenants: what tenantd's provisioning does (src/tenant/provision.c make_role,
-- make_storage, grant_schema; src/migrate/files.c ledger), one tenant at a time, with a
-- COMMIT every 50 tenants so that no transaction needs more locks than the lock table
-- holds. bench.py calls it on several connections at once, each on a range of n.
CREATE PROCEDURE bench.make_schemas(lo integer, hi integer)
LANGUAGE plpgsql AS $proc$
DECLARE
    t record;
    m record;
    done integer := 0;
    pwhash text := (SELECT s.pwhash FROM bench.settings s);
BEGIN
    FOR t IN SELECT * FROM bench.tenants
             WHERE isolation = 'schema' AND n BETWEEN lo AND hi ORDER BY n LOOP
        EXECUTE format('CREATE ROLE %I NOLOGIN', t.schema);
        EXECUTE format('GRANT %I TO tenantd_app', t.schema);
        EXECUTE format('CREATE SCHEMA %I', t.schema);
        EXECUTE format('CREATE TABLE %I.tenantd_migrations (version integer PRIMARY KEY, '
                       'name text NOT NULL, checksum text NOT NULL, '
                       'applied_at timestamptz NOT NULL DEFAULT now(), '
                       'duration_ms integer NOT NULL DEFAULT 0)', t.schema);
        PERFORM set_config('search_path', t.schema, true);
        FOR m IN SELECT * FROM bench.migrations ORDER BY version LOOP
            EXECUTE m.sql;
            EXECUTE format('INSERT INTO %I.tenantd_migrations (version, name, checksum) '
                           'VALUES ($1, $2, $3)', t.schema)
                USING m.version, m.name, m.checksum;
        END LOOP;
        EXECUTE format('GRANT USAGE ON SCHEMA %1$I TO %1$I; '
                       'GRANT SELECT, INSERT, UPDATE, DELETE ON %1$I.users, %1$I.projects, '
                       '%1$I.audit_logs TO %1$I', t.schema);
        EXECUTE format('INSERT INTO %I.users (tenant_id, id, email, name, role, password_hash) '
                       'VALUES ($1, $2, $3, ''Bench owner'', ''owner'', $4)', t.schema)
            USING t.id, t.user_id, 'owner@bench-' || t.n || '.example', pwhash;
        EXECUTE format('INSERT INTO %I.projects (tenant_id, id, name, description, status, '
                       'created_at, updated_at) '
                       'SELECT $1, ((10000000 + j) || ''-0000-4000-9000-'' || $2)::uuid, '
                       '''Project '' || j, ''Seeded by bench/seed.sql'', ''active'', '
                       'now() - (51 - j) * interval ''1 second'', '
                       'now() - (51 - j) * interval ''1 second'' '
                       'FROM generate_series(1, 50) AS j', t.schema)
            USING t.id, t.k;
        done := done + 1;
        IF done % 50 = 0 THEN
            COMMIT;
        END IF;
    END LOOP;
    COMMIT;
END
$proc$;
