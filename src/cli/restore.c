/*
 * restore.c - `tenantd tenants restore|clone`: the checks and the job of the admin API's
 * restore and clone routes (app_restore_enqueue), then, unless told not to, a wait for the
 * job's outcome. The job runs in a `tenantd serve` job worker sharing the catalog (it needs
 * the serving process's backup repository and scratch recovery), so this command polls
 * tenantd.jobs until the job has finished.
 */
#include "cli/cli.h"

#include "app/restore.h"
#include "auth/jwt.h"
#include "core/clock.h"
#include "tenant/check.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How often the jobs table is read while waiting, and when to say nothing runs the job. */
#define POLL_MS 500
#define QUEUED_HINT_MS 30000

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int print_job(json_t *j)
{
    int rc = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(4));
    fputc('\n', stdout);
    return rc == 0 && fflush(stdout) == 0 ? 0 : 1;
}

/* Poll the job until it succeeded or failed; prints it; the exit status. */
static int wait_job(PGconn *pg, const char *what, const char *job_id)
{
    int tty = isatty(2), hinted = 0;
    long long t0 = td_now_us();
    double shown = -1;
    for (;;) {
        json_t *j = NULL;
        if (app_job_json(pg, job_id, &j) < 0) {
            fprintf(stderr, "tenantd tenants %s: lost the job %s (the database is unreachable)\n",
                    what, job_id);
            return 1;
        }
        const char *st = json_string_value(json_object_get(j, "status"));
        double progress = json_real_value(json_object_get(j, "progress"));
        if (!strcmp(st, "succeeded") || !strcmp(st, "failed")) {
            int failed = !strcmp(st, "failed");
            if (failed)
                fprintf(stderr, "tenantd tenants %s: job %s failed: %s\n", what, job_id,
                        json_string_value(json_object_get(json_object_get(j, "error"), "detail")));
            int rc = print_job(j);
            json_decref(j);
            return failed || rc ? 1 : 0;
        }
        if (tty && progress != shown)
            fprintf(stderr, "job %s %s, %.0f%%\n", job_id, st, progress * 100);
        shown = progress;
        if (!hinted && !strcmp(st, "queued") && td_now_us() - t0 > QUEUED_HINT_MS * 1000LL) {
            fprintf(stderr,
                    "tenantd tenants %s: job %s is still queued: a `tenantd serve` "
                    "sharing this catalog runs it\n",
                    what, job_id);
            hinted = 1;
        }
        json_decref(j);
        sleep_ms(POLL_MS);
    }
}

/* Who asks, for the record of operator actions. */
static void actor_of(char *out, size_t size)
{
    struct passwd *pw = getpwuid(getuid());
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(out, size, "tenantd tenants by %s on %s", pw ? pw->pw_name : "?", host);
}

int cli_restore(struct td_app *app, const struct cli_restore_args *a)
{
    const char *what = a->clone ? "clone" : "restore";
    char actor[160], job_id[40], why[APP_RESTORE_DETAIL];
    PGconn *pg = NULL;
    if (!app->cluster || !app->cfg->backup) {
        fprintf(stderr,
                "tenantd tenants %s: restore and clone need the embedded cluster with "
                "backups on\n",
                what);
        return 1;
    }
    actor_of(actor, sizeof(actor));
    /* the repository `tenantd serve` configured, read for the oldest backup of each server,
     * so that a moment before it is refused here rather than by the job */
    struct bkp *b = NULL;
    if (bkp_open_info(app->cfg, app->cluster, app->db, &b) < 0) {
        fprintf(stderr,
                "tenantd tenants %s: no backup repository configured yet (`tenantd serve` with "
                "backups on writes it)\n",
                what);
        bkp_close(b);
        return 1;
    }
    struct app_restore q = {a->clone, a->key, a->at, a->new_slug, a->confirm, actor, b};
    if (db_admin_connect(app->db, 0, NULL, &pg) < 0) {
        fprintf(stderr, "tenantd tenants %s: the database is unreachable\n", what);
        bkp_close(b);
        return 1;
    }
    int rc = app_restore_enqueue(app, pg, &q, job_id, why), status;
    if (rc == TD_EBADREQ || rc == TD_EVALIDATION) {
        fprintf(stderr, "tenantd tenants %s: %s; nothing was changed\n", what,
                rc == TD_EBADREQ ? "replacing a tenant's data needs --confirm with its slug "
                                   "(or give --slug)"
                                 : why);
        status = 2;
    } else if (rc < 0) {
        fprintf(stderr, "tenantd tenants %s: %s\n", what,
                why[0]                      ? why
                : rc == TD_ETENANT_NOTFOUND ? "no such tenant"
                                            : "the database is unreachable");
        status = 1;
    } else if (a->no_wait) {
        json_t *j = NULL;
        status = app_job_json(pg, job_id, &j) == 0 ? print_job(j) : 1;
        json_decref(j);
    } else {
        status = wait_job(pg, what, job_id);
    }
    PQfinish(pg);
    bkp_close(b);
    return status;
}
