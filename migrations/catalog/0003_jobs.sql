-- Background jobs (src/jobs/README.md): a queue in the catalog. Every job names its tenant
-- (NULL: a platform job); workers claim due jobs with FOR UPDATE SKIP LOCKED.
-- tenant_id has no foreign key on purpose: the jobs of a deleted tenant stay, to be
-- marked 'skipped' instead of vanishing unseen.
CREATE TABLE tenantd.jobs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid,
    kind text NOT NULL CHECK (kind ~ '^[a-z][a-z0-9_]{0,62}$'),
    payload jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(payload) = 'object'),
    run_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 5 CHECK (max_attempts BETWEEN 1 AND 100),
    status text NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'done', 'dead', 'skipped')),
    last_error text,
    locked_by text,
    locked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
-- what workers scan: only unfinished jobs
CREATE INDEX jobs_due_idx ON tenantd.jobs (run_at, id) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_tenant_idx ON tenantd.jobs (tenant_id, kind) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_finished_idx ON tenantd.jobs (finished_at) WHERE finished_at IS NOT NULL;

-- Built-in scheduled jobs. Each due row becomes one job (per_tenant: one job for each
-- active tenant), unless such a job is still queued or running. Several instances may
-- tick at once: the row lock of the UPDATE lets exactly one of them enqueue.
CREATE TABLE tenantd.job_schedules (
    name text PRIMARY KEY,
    every interval NOT NULL CHECK (every >= interval '1 second'),
    per_tenant boolean NOT NULL DEFAULT false,
    max_attempts integer NOT NULL DEFAULT 3,
    next_run_at timestamptz NOT NULL DEFAULT now(),
    last_run_at timestamptz
);
INSERT INTO tenantd.job_schedules (name, every, per_tenant) VALUES
    ('audit_retention', '1 day', true),
    ('usage_rollup', '1 day', false),
    ('analytics_refresh', '5 minutes', false),
    ('jobs_cleanup', '1 day', false);
