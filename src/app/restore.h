/*
 * restore.h - an operator's point-in-time restore or clone of a tenant, shared by the admin
 * API (api/restore.c) and the CLI (cli/restore.c): the checks that refuse a request before
 * anything changes, then the job queued together with its line in tenantd.operator_actions.
 * The work itself is a job of src/backup, run by a `tenantd serve` job worker.
 */
#ifndef TD_APP_RESTORE_H
#define TD_APP_RESTORE_H

#include "app/app.h"
#include "backup/backup.h"

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>

/* One request, as plain values (borrowed). */
struct app_restore {
    int clone;            /* 1: a copy of the tenant as it is now under new_slug */
    const char *key;      /* the tenant's id or slug (a deleted tenant's too, for a restore) */
    const char *at;       /* the moment, RFC 3339 with a zone; NULL for a clone */
    const char *new_slug; /* the copy's slug; NULL: restore in place (a clone needs one) */
    const char *confirm;  /* the tenant's slug: restoring in place needs it */
    const char *actor;    /* who asks, for the record of operator actions */
    struct bkp *backup;   /* the repository's backups of every server (bkp_oldest) */
};

/* Detail texts are at most this long. */
#define APP_RESTORE_DETAIL 320

/*
 * Check q (values, the tenant, the moment against its life and plan window, the confirm
 * slug, a free slug, a base backup of the tenant's server old enough) on pg (a catalog
 * superuser connection) and queue the job. Returns 0 with job_id, or TD_EVALIDATION (a
 * moment before the oldest backup: the detail names the earliest moment), TD_EBADREQ
 * (confirm), TD_ECONFLICT (slug taken), TD_ETENANT_NOTFOUND, TD_EUNAVAILABLE (no backup of
 * that server) with the reason in detail (may be empty).
 * Nothing is changed when it refuses. The caller checks that backups are on.
 */
int app_restore_enqueue(struct td_app *app, PGconn *pg, const struct app_restore *q,
                        char job_id[40], char detail[APP_RESTORE_DETAIL]) TD_MUSTCHECK;

/* The job id as GET /admin/jobs/{id} shows it: {id, kind, status (queued|running|
 * succeeded|failed), progress, error, result, created_at, finished_at}. Returns 0 with *out
 * (caller decrefs), TD_ENOTFOUND or TD_EUNAVAILABLE. */
int app_job_json(PGconn *pg, const char *id, json_t **out) TD_MUSTCHECK;

#endif
