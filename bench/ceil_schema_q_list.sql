-- The ceiling for a schema tenant, schema-qualified variant (-M simple, as tenantd_app):
-- pgbench substitutes :k into the text, so the schema is named in the SQL; the tenant id
-- and role are set and the query runs in one compound simple query (one round trip, one
-- implicit transaction), parsed and planned every time.
-- GET /projects: the 20 newest as one json_agg (21 fetched, so that the caller knows
-- whether there is a next page; its cursor comes from the 20th row)
\set k 100000000000 + :npool + random(1, :nschema)
SELECT set_config('app.tenant_id', '00000000-0000-4000-8000-:k', true),
       set_config('role', 't_00000000000040008000:k', true) \;
SELECT json_agg(x) FROM (
    SELECT id, name, description, status, created_at, updated_at FROM t_00000000000040008000:k.projects
    ORDER BY created_at DESC, id DESC LIMIT 21) x;
