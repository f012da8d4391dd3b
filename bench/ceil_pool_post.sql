-- The ceiling for a pool tenant (bench.py runs it with -M prepared, as tenantd_app so that
-- the FORCEd row-level security applies): the tenant context and the prepared query
-- pipelined as one implicit transaction (one Sync: one round trip, as tenantd does).
-- POST /projects: the row and its audit row in one statement, the new row as JSON
\set k 100000000000 + random(1, :npool)
\startpipeline
SELECT set_config('app.tenant_id', '00000000-0000-4000-8000-' || :k::text, true);
WITH p AS (
    INSERT INTO pool.projects (name) VALUES ('bench project')
    RETURNING id, name, description, status, created_at, updated_at),
a AS (
    INSERT INTO pool.audit_logs (actor_id, action, entity_type, entity_id, new_values, ip, user_agent)
    SELECT ('00000000-0000-4000-a000-' || :k::text)::uuid, 'create', 'project', p.id, to_jsonb(p), '127.0.0.1', '' FROM p)
SELECT row_to_json(p) FROM p;
\endpipeline
