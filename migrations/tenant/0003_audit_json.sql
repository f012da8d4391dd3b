-- Audit values are stored as json holding the API's compact text, so that the audit list
-- and an export relay them as stored. jsonb's own text is spaced ("a": 1) and had to be
-- rewritten on every read. Existing values are written out member by member, and a
-- timestamp string under a key ending in _at is rewritten as YYYY-MM-DDTHH:MM:SS.ffffffZ
-- (UTC): entries written before timestamps were formatted read like new ones. Members are
-- kept in the order jsonb keeps them, which is the order the list showed until now.
CREATE FUNCTION tenantd_audit_compact(v jsonb) RETURNS json
LANGUAGE sql STABLE AS $$
SELECT CASE WHEN jsonb_typeof(v) <> 'object' THEN v::json ELSE (
    SELECT ('{' || COALESCE(string_agg(to_json(e.key)::text || ':' || CASE
        WHEN e.key LIKE '%\_at' AND jsonb_typeof(e.value) = 'string' AND e.value #>> '{}' ~
            '^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d(:\d\d)?)$'
        THEN to_json(to_char((e.value #>> '{}')::timestamptz AT TIME ZONE 'UTC',
                             'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text
        ELSE e.value::text END, ','), '') || '}')::json
    FROM jsonb_each(v) e) END
$$;

ALTER TABLE audit_logs
    ALTER COLUMN old_values TYPE json USING tenantd_audit_compact(old_values),
    ALTER COLUMN new_values TYPE json USING tenantd_audit_compact(new_values);

DROP FUNCTION tenantd_audit_compact(jsonb);
