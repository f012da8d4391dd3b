-- The ceiling for a pool tenant (bench.py runs it with -M prepared, as tenantd_app so that
-- the FORCEd row-level security applies): the tenant context and the prepared query
-- pipelined as one implicit transaction (one Sync: one round trip, as tenantd does).
-- GET /projects/{id}: one row by primary key as JSON
\set k 100000000000 + random(1, :npool)
\set j 10000000 + random(1, 50)
\startpipeline
SELECT set_config('app.tenant_id', '00000000-0000-4000-8000-' || :k::text, true);
SELECT row_to_json(x) FROM (
    SELECT id, name, description, status, created_at, updated_at FROM pool.projects
    WHERE id = (:j::text || '-0000-4000-9000-' || :k::text)::uuid) x;
\endpipeline
