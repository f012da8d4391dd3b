-- The ceiling for a schema tenant, schema-qualified variant (-M simple, as tenantd_app):
-- pgbench substitutes :k into the text, so the schema is named in the SQL; the tenant id
-- and role are set and the query runs in one compound simple query (one round trip, one
-- implicit transaction), parsed and planned every time.
-- POST /projects: the row and its audit row in one statement, the new row as JSON
\set k 100000000000 + :npool + random(1, :nschema)
SELECT set_config('app.tenant_id', '00000000-0000-4000-8000-:k', true),
       set_config('role', 't_00000000000040008000:k', true) \;
WITH p AS (
    INSERT INTO t_00000000000040008000:k.projects (name) VALUES ('bench project')
    RETURNING id, name, description, status, created_at, updated_at),
a AS (
    INSERT INTO t_00000000000040008000:k.audit_logs (actor_id, action, entity_type, entity_id, new_values, ip, user_agent)
    SELECT '00000000-0000-4000-a000-:k', 'create', 'project', p.id, to_jsonb(p), '127.0.0.1', '' FROM p)
SELECT row_to_json(p) FROM p;
