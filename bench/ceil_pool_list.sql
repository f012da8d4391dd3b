-- The ceiling for a pool tenant (bench.py runs it with -M prepared, as tenantd_app so that
-- the FORCEd row-level security applies): the tenant context and the prepared query
-- pipelined as one implicit transaction (one Sync: one round trip, as tenantd does).
-- GET /projects: the 20 newest as one json_agg (21 fetched, so that the caller knows
-- whether there is a next page; its cursor comes from the 20th row)
\set k 100000000000 + random(1, :npool)
\startpipeline
SELECT set_config('app.tenant_id', '00000000-0000-4000-8000-' || :k::text, true);
SELECT json_agg(x) FROM (
    SELECT id, name, description, status, created_at, updated_at FROM pool.projects
    ORDER BY created_at DESC, id DESC LIMIT 21) x;
\endpipeline
