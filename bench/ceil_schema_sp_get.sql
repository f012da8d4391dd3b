-- The ceiling for a schema tenant, search_path variant (-M prepared, as tenantd_app): the
-- tenant id, the tenant's role and its search_path set per transaction, pipelined with
-- the prepared query; PostgreSQL re-plans the query whenever search_path changed.
-- GET /projects/{id}: one row by primary key as JSON
\set k 100000000000 + :npool + random(1, :nschema)
\set j 10000000 + random(1, 50)
\startpipeline
SELECT set_config('app.tenant_id', '00000000-0000-4000-8000-' || :k::text, true),
       set_config('role', 't_00000000000040008000' || :k::text, true),
       set_config('search_path', 't_00000000000040008000' || :k::text, true);
SELECT row_to_json(x) FROM (
    SELECT id, name, description, status, created_at, updated_at FROM projects
    WHERE id = (:j::text || '-0000-4000-9000-' || :k::text)::uuid) x;
\endpipeline
