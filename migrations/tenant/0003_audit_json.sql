-- Audit values are stored as json holding the API's compact text, so that the audit list
-- and an export relay them as stored. jsonb's own text is spaced ("a": 1) and had to be
-- rewritten on every read. Existing values are written out compact at every depth, and a
-- timestamp string under a top-level key ending in _at is rewritten as
-- YYYY-MM-DDTHH:MM:SS.ffffffZ (UTC): entries written before timestamps were formatted read
-- like new ones. Members keep the order jsonb keeps them in, which the list showed until now.
CREATE FUNCTION tenantd_audit_compact(v jsonb, top boolean) RETURNS text
LANGUAGE sql STABLE STRICT AS $$
SELECT CASE jsonb_typeof(v)
    WHEN 'object' THEN '{' || COALESCE((SELECT string_agg(to_json(e.key)::text || ':' || CASE
        WHEN top AND e.key LIKE '%\_at' AND jsonb_typeof(e.value) = 'string' AND
            e.value #>> '{}' ~ '^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d(:\d\d)?)$'
        THEN to_json(to_char((e.value #>> '{}')::timestamptz AT TIME ZONE 'UTC',
                             'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text
        WHEN jsonb_typeof(e.value) IN ('object', 'array')
        THEN tenantd_audit_compact(e.value, false)
        ELSE e.value::text END, ',') FROM jsonb_each(v) e), '') || '}'
    WHEN 'array' THEN '[' || COALESCE((SELECT string_agg(CASE WHEN jsonb_typeof(a.value) IN
        ('object', 'array') THEN tenantd_audit_compact(a.value, false) ELSE a.value::text END,
        ',' ORDER BY a.n) FROM jsonb_array_elements(v) WITH ORDINALITY a(value, n)), '') || ']'
    ELSE v::text END
$$;

ALTER TABLE audit_logs
    ALTER COLUMN old_values TYPE json USING tenantd_audit_compact(old_values, true)::json,
    ALTER COLUMN new_values TYPE json USING tenantd_audit_compact(new_values, true)::json;

DROP FUNCTION tenantd_audit_compact(jsonb, boolean);
