-- The ceiling for a schema tenant, schema-qualified variant (-M simple, as tenantd_app):
-- pgbench substitutes :k into the text, so the schema is named in the SQL; the tenant id
-- and role are set and the query runs in one compound simple query (one round trip, one
-- implicit transaction), parsed and planned every time.
-- GET /projects/{id}: one row by primary key as JSON
\set k 100000000000 + :npool + random(1, :nschema)
\set j 10000000 + random(1, 50)
SELECT set_config('app.tenant_id', '00000000-0000-4000-8000-:k', true),
       set_config('role', 't_00000000000040008000:k', true) \;
SELECT row_to_json(x) FROM (
    SELECT id, name, description, status, created_at, updated_at FROM t_00000000000040008000:k.projects
    WHERE id = ':j-0000-4000-9000-:k') x;
