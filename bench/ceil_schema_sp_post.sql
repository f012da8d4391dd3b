-- The ceiling for a schema tenant, search_path variant (-M prepared, as tenantd_app): the
-- tenant id, the tenant's role and its search_path set per transaction, pipelined with
-- the prepared query; PostgreSQL re-plans the query whenever search_path changed.
-- POST /projects: the row and its audit row in one statement, the new row as JSON
\set k 100000000000 + :npool + random(1, :nschema)
\startpipeline
SELECT set_config('app.tenant_id', '00000000-0000-4000-8000-' || :k::text, true),
       set_config('role', 't_00000000000040008000' || :k::text, true),
       set_config('search_path', 't_00000000000040008000' || :k::text, true);
WITH p AS (
    INSERT INTO projects (name) VALUES ('bench project')
    RETURNING id, name, description, status, created_at, updated_at),
a AS (
    INSERT INTO audit_logs (actor_id, action, entity_type, entity_id, new_values, ip, user_agent)
    SELECT ('00000000-0000-4000-a000-' || :k::text)::uuid, 'create', 'project', p.id, to_jsonb(p), '127.0.0.1', '' FROM p)
SELECT row_to_json(p) FROM p;
\endpipeline
