-- The ceiling for a schema tenant, search_path variant (-M prepared, as tenantd_app): the
-- tenant id, the tenant's role and its search_path set per transaction, pipelined with
-- the prepared query; PostgreSQL re-plans the query whenever search_path changed.
-- GET /projects: the 20 newest as one json_agg (21 fetched, so that the caller knows
-- whether there is a next page; its cursor comes from the 20th row)
\set k 100000000000 + :npool + random(1, :nschema)
\startpipeline
SELECT set_config('app.tenant_id', '00000000-0000-4000-8000-' || :k::text, true),
       set_config('role', 't_00000000000040008000' || :k::text, true),
       set_config('search_path', 't_00000000000040008000' || :k::text, true);
SELECT json_agg(x) FROM (
    SELECT id, name, description, status, created_at, updated_at FROM projects
    ORDER BY created_at DESC, id DESC LIMIT 21) x;
\endpipeline
