/*
 * jobs.h - tenant-scoped background jobs: a queue in the catalog (tenantd.jobs), worker
 * threads that claim jobs with FOR UPDATE SKIP LOCKED and run each one inside its tenant's
 * storage with the same isolation as a request, retries with exponential backoff, a
 * dead-letter state, and the built-in scheduled jobs (tenantd.job_schedules). Delivery is
 * at least once: a job whose worker died is claimed again when its lease runs out.
 */
#ifndef TD_JOBS_JOBS_H
#define TD_JOBS_JOBS_H

#include "core/err.h"
#include "db/db.h"

#include <jansson.h>
#include <stddef.h>

/* Seconds a claimed job stays claimed without a heartbeat before another worker may take
 * it again (its first worker is presumed dead). */
#define JOBS_LEASE_S 300
/* Seconds before the first retry; each further retry waits twice as long (capped at an
 * hour), plus up to 25 % jitter. */
#define JOBS_BACKOFF_BASE_S 2
#define JOBS_DEFAULT_MAX_ATTEMPTS 5

struct jobs;
struct mig_expected;

/*
 * A platform job kind defined outside src/jobs (restore and clone, src/backup). run gets
 * the job's id, its payload (a JSON object) and the worker's catalog connection
 * (superuser, no transaction open); returns 0, or a TD_E* code with err[cap] filled.
 * arg is passed through. Such jobs get no tenant check: the kind does its own.
 */
struct jobs_kind_ext {
    const char *name;
    int (*run)(void *arg, PGconn *pg, const char *job_id, const json_t *payload, char *err,
               size_t cap);
    void *arg;
};

/*
 * Start n worker threads (n == 0: none, *out is NULL). Each opens its own superuser
 * connection to the catalog for the queue; tenant work goes through db_exec() with the
 * tenant's target. Worker 0 also enqueues due scheduled jobs and counts the queue and the
 * tenants whose storage is behind the version expected says (a tenant job
 * waits, retrying, while its storage is behind, as requests do). db and expected
 * must outlive jobs_stop(), as must ext (n_ext kinds defined outside src/jobs, may be
 * NULL). Returns 0; connection failures are retried, not fatal.
 */
int jobs_start(struct db *db, struct mig_expected *expected, int n, const struct jobs_kind_ext *ext,
               int n_ext, struct jobs **out) TD_MUSTCHECK;

/* Ask the workers to stop, wait for the jobs they run to finish, free. NULL is a no-op. */
void jobs_stop(struct jobs *j);

/*
 * Queue a job on pg (a catalog connection; runs in the caller's transaction if one is
 * open). tenant_id NULL: a platform job. payload: JSON object text or NULL for {}.
 * max_attempts <= 0: JOBS_DEFAULT_MAX_ATTEMPTS. id (>= 37 bytes, may be NULL) gets the
 * job's id. Returns 0 or the mapped database error.
 */
int jobs_enqueue(PGconn *pg, const char *tenant_id, const char *kind, const char *payload,
                 int delay_s, int max_attempts, char *id) TD_MUSTCHECK;

/* Days of audit log kept by plan: free 30, starter 90, pro 365; -1 (enterprise and unknown
 * plans): kept forever. */
int jobs_audit_retention_days(const char *plan);

/* Counters of one struct jobs (finished jobs by outcome) and the last counts made by
 * worker 0 (-1 until it has counted): the queue, and tenants whose storage is behind the
 * expected tenant migration version or whose last migration failed. */
struct jobs_stats {
    long long done, retried, dead, skipped;
    long long queued, running, dead_now;
    long long mig_pending, mig_failed;
};
/* Thread-safe snapshot of j's counters; j NULL (no workers): zeros and -1. */
void jobs_get_stats(const struct jobs *j, struct jobs_stats *out);

#endif
