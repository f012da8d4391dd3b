/*
 * internal.h - what the queue (jobs.c) and the built-in job kinds (kinds.c) share. Not for
 * use outside src/jobs.
 */
#ifndef TD_JOBS_INTERNAL_H
#define TD_JOBS_INTERNAL_H

#include "jobs/jobs.h"
#include "tenant/tenant.h"

#include <jansson.h>
#include <stdatomic.h>

/* One claimed job as its kind's run function sees it. */
struct jobs__ctx {
    struct db *db;
    PGconn *pg;         /* the worker's catalog connection (superuser) */
    const char *worker; /* locked_by of this worker */
    const char *job_id;
    const struct tnt_tenant *tenant; /* NULL for a platform job */
    const json_t *payload;           /* a JSON object */
    int attempt;                     /* 1 on the first run */
    const atomic_int *stop;          /* becomes 1 when the server stops: long jobs give up */
    char error[256];                 /* why the run failed (stored as last_error) */
};

struct jobs__kind {
    const char *name;
    int per_tenant; /* 1: needs a tenant, run in its storage; 0: a platform job */
    /* Returns 0, or a negative TD_E* code with ctx->error filled. */
    int (*run)(struct jobs__ctx *ctx);
};

/* The kind called name, or NULL. */
const struct jobs__kind *jobs__kind_find(const char *name);

/* Extend the lease of the running job (long platform jobs call this now and then).
 * Returns 0, or TD_ENOTFOUND when the job is no longer ours. */
int jobs__heartbeat(struct jobs__ctx *ctx);

/* Fill ctx->error with a message and return rc. */
int jobs__fail(struct jobs__ctx *ctx, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
