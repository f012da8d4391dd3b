/*
 * files.c - loading migration files, their ledgers, and applying them to the catalog or a
 * tenant schema (file by file for existing storage, as one baseline for a fresh one).
 */
#include "migrate/files.h"

#include "core/clock.h"
#include "core/log.h"
#include "core/mem.h"
#include "db/db.h"
#include "migrate/internal.h"
#include "tenant/names.h"

#include <ctype.h>
#include <dirent.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CATALOG_LOCK "7204001"
#define EXPECTED_REFRESH_MS 2000

static const char ledger_ddl[] =
    "CREATE TABLE IF NOT EXISTS %s (version integer PRIMARY KEY, name text NOT NULL, "
    "checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now(), "
    "duration_ms integer NOT NULL DEFAULT 0)";

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *buf = td_xmalloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len < 2) {
            cap *= 2;
            buf = td_xrealloc(buf, cap);
        }
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static int cmp_file(const void *a, const void *b)
{
    return ((const struct mig_file *)a)->version - ((const struct mig_file *)b)->version;
}

/* 1 when name looks like NNNN_x.sql; *sql set when it ends in .sql at all. */
static int migration_name(const char *name, int *sql)
{
    size_t len = strlen(name);
    *sql = len >= 4 && strcmp(name + len - 4, ".sql") == 0;
    if (!*sql || len < 10)
        return 0;
    for (int i = 0; i < 4; i++)
        if (!isdigit((unsigned char)name[i]))
            return 0;
    return name[4] == '_';
}

/* Append s to the growing buffer *buf (length *len, capacity *cap). */
static void append(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        while (*len + n + 1 > *cap)
            *cap = *cap ? *cap * 2 : 4096;
        *buf = td_xrealloc(*buf, *cap);
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

/* The files, then the ledger and one INSERT of every version, to run with search_path set
 * to a fresh schema. Newlines around the separators keep a trailing "-- comment" of a file
 * from swallowing the ";". */
static char *build_baseline(const struct mig_set *s)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (int i = 0; i < s->n; i++) {
        append(&buf, &len, &cap, s->files[i].sql);
        append(&buf, &len, &cap, "\n;\n");
    }
    /* the tenant policy on every table, as after each file of an existing storage (the
     * files' checks ran on each server's pool schema at start-up, before any provisioning) */
    append(&buf, &len, &cap, mig__enforce_sql);
    append(&buf, &len, &cap, ";\n");
    char *ddl = td_xasprintf(ledger_ddl, "tenantd_migrations");
    append(&buf, &len, &cap, ddl);
    free(ddl);
    append(&buf, &len, &cap, ";\nINSERT INTO tenantd_migrations (version, name, checksum) VALUES ");
    for (int i = 0; i < s->n; i++) {
        /* names are NNNN_ plus file-name characters; quote defensively all the same */
        char *row = td_xasprintf("%s(%d, '", i ? ", " : "", s->files[i].version);
        append(&buf, &len, &cap, row);
        free(row);
        for (const char *c = s->files[i].name; *c; c++) {
            char q[3] = {*c, *c == '\'' ? '\'' : '\0', '\0'};
            append(&buf, &len, &cap, q);
        }
        row = td_xasprintf("', '%s')", s->files[i].checksum);
        append(&buf, &len, &cap, row);
        free(row);
    }
    append(&buf, &len, &cap, ";\n");
    return buf;
}

int mig_load(const char *dir, struct mig_set *out)
{
    memset(out, 0, sizeof(*out));
    DIR *d = opendir(dir);
    if (!d) {
        td_log_error("could not open migrations directory %s", dir);
        return TD_EINTERNAL;
    }
    struct dirent *e;
    int cap = 0, rc = 0, sql;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (!migration_name(e->d_name, &sql)) {
            if (!sql)
                continue;
            td_log_error("migration %s/%s is not named NNNN_name.sql", dir, e->d_name);
            rc = TD_EINTERNAL;
            break;
        }
        char *path = td_xasprintf("%s/%s", dir, e->d_name);
        char *text = read_file(path);
        free(path);
        if (!text) {
            td_log_error("could not read migration %s/%s", dir, e->d_name);
            rc = TD_EINTERNAL;
            break;
        }
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            out->files = td_xrealloc(out->files, sizeof(*out->files) * (size_t)cap);
        }
        struct mig_file *m = &out->files[out->n++];
        m->version = atoi(e->d_name);
        m->name = td_xstrndup(e->d_name, len - 4);
        m->sql = text;
        unsigned char h[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(h, (const unsigned char *)text, strlen(text));
        sodium_bin2hex(m->checksum, sizeof(m->checksum), h, sizeof(h));
    }
    closedir(d);
    if (rc == 0 && out->n > 1) {
        qsort(out->files, (size_t)out->n, sizeof(*out->files), cmp_file);
        for (int i = 1; i < out->n; i++)
            if (out->files[i].version == out->files[i - 1].version) {
                td_log_error("migrations %s and %s share a version", out->files[i - 1].name,
                             out->files[i].name);
                rc = TD_EINTERNAL;
            }
    }
    if (rc == 0 && out->n > 0)
        out->baseline = build_baseline(out);
    if (rc < 0)
        mig_set_cleanup(out);
    return rc;
}

void mig_set_cleanup(struct mig_set *s)
{
    for (int i = 0; i < s->n; i++) {
        free(s->files[i].name);
        free(s->files[i].sql);
    }
    free(s->files);
    free(s->baseline);
    s->files = NULL;
    s->baseline = NULL;
    s->n = 0;
}

int mig_latest(const struct mig_set *s)
{
    return s->n ? s->files[s->n - 1].version : 0;
}

int mig_dir_latest(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return TD_EINTERNAL;
    struct dirent *e;
    int latest = 0, sql;
    while ((e = readdir(d)))
        if (migration_name(e->d_name, &sql) && atoi(e->d_name) > latest)
            latest = atoi(e->d_name);
    closedir(d);
    return latest;
}

void mig_expected_init(struct mig_expected *e, const char *migrations_dir)
{
    e->dir = td_xasprintf("%s/tenant", migrations_dir);
    atomic_init(&e->version, -1);
    atomic_init(&e->at_ms, 0);
    pthread_mutex_init(&e->mu, NULL);
}

void mig_expected_cleanup(struct mig_expected *e)
{
    if (!e->dir)
        return;
    free(e->dir);
    e->dir = NULL;
    pthread_mutex_destroy(&e->mu);
}

/* Read by every tenant request: an atomic load, and a directory scan (names only) by one
 * thread at most every EXPECTED_REFRESH_MS. */
int mig_expected_get(struct mig_expected *e)
{
    int v = atomic_load(&e->version);
    long long now = td_now_ms();
    if (v >= 0 && now - atomic_load(&e->at_ms) < EXPECTED_REFRESH_MS)
        return v;
    /* the first caller must wait for a value; later ones keep the old one meanwhile */
    if (v >= 0 ? pthread_mutex_trylock(&e->mu) != 0 : pthread_mutex_lock(&e->mu) != 0)
        return v;
    v = atomic_load(&e->version);
    if (v < 0 || now - atomic_load(&e->at_ms) >= EXPECTED_REFRESH_MS) {
        int latest = mig_dir_latest(e->dir);
        if (latest < 0) {
            if (v < 0)
                td_log_warn("could not read %s: expecting version 0", e->dir);
            latest = v < 0 ? 0 : v;
        }
        atomic_store(&e->version, latest);
        atomic_store(&e->at_ms, now);
        v = latest;
    }
    pthread_mutex_unlock(&e->mu);
    return v;
}

int mig_ledger_read(PGconn *pg, const char *ledger, struct mig_ledger *out)
{
    memset(out, 0, sizeof(*out));
    /* to_regclass: a missing ledger must not abort the caller's transaction */
    char *sql;
    PGresult *r = NULL;
    const char *p[1] = {ledger};
    int rc = db_admin_exec(pg, "looking for the migration ledger",
                           "SELECT to_regclass($1) IS NOT NULL", 1, p, &r);
    if (rc < 0)
        return rc;
    int exists = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    r = NULL;
    if (!exists)
        return 0;
    sql = td_xasprintf("SELECT version, checksum FROM %s ORDER BY version", ledger);
    rc = db_admin_exec(pg, "reading the migration ledger", sql, 0, NULL, &r);
    free(sql);
    if (rc < 0)
        return rc;
    out->n = PQntuples(r);
    out->versions = td_xcalloc((size_t)out->n + 1, sizeof(*out->versions));
    out->checksums = td_xcalloc((size_t)out->n + 1, sizeof(*out->checksums));
    for (int i = 0; i < out->n; i++) {
        out->versions[i] = atoi(PQgetvalue(r, i, 0));
        snprintf(out->checksums[i], sizeof(out->checksums[i]), "%s", PQgetvalue(r, i, 1));
        if (out->versions[i] > out->max_version)
            out->max_version = out->versions[i];
    }
    PQclear(r);
    return 0;
}

void mig_ledger_cleanup(struct mig_ledger *l)
{
    free(l->versions);
    free(l->checksums);
    memset(l, 0, sizeof(*l));
}

int mig_pending(const struct mig_set *s, const struct mig_ledger *l, int *pending, int *npending,
                char **err)
{
    static __thread char msg[512];
    *npending = 0;
    for (int i = 0; i < s->n; i++) {
        const struct mig_file *m = &s->files[i];
        int found = -1;
        for (int j = 0; j < l->n && found < 0; j++)
            if (l->versions[j] == m->version)
                found = j;
        if (found < 0) {
            pending[(*npending)++] = i;
        } else if (strcmp(l->checksums[found], m->checksum) != 0) {
            snprintf(msg, sizeof(msg),
                     "migration %s.sql was edited after it was applied (its checksum differs "
                     "from the recorded one); restore it and put the change in a new migration",
                     m->name);
            *err = msg;
            return TD_ECONFLICT;
        }
    }
    return 0;
}

static int ledger_record(PGconn *pg, const char *ledger, const struct mig_file *m, long long ms)
{
    char v[16], d[24];
    snprintf(v, sizeof(v), "%d", m->version);
    snprintf(d, sizeof(d), "%lld", ms);
    char *sql = td_xasprintf("INSERT INTO %s (version, name, checksum, duration_ms) "
                             "VALUES ($1, $2, $3, $4)",
                             ledger);
    int rc = db_admin_exec(pg, "recording a migration", sql, 4,
                           (const char *const[]){v, m->name, m->checksum, d}, NULL);
    free(sql);
    return rc;
}

int mig_apply_catalog(PGconn *pg, const struct mig_set *s)
{
    char *err = NULL;
    struct mig_ledger l = {0};
    int *pending = td_xcalloc((size_t)s->n + 1, sizeof(int));
    int np = 0;
    int rc = db_admin_exec(pg, "locking the catalog", "SELECT pg_advisory_lock(" CATALOG_LOCK ")",
                           0, NULL, NULL);
    if (rc < 0)
        goto out;
    char *ddl = td_xasprintf(ledger_ddl, "tenantd.catalog_migrations");
    rc = db_admin_exec(pg, "creating the catalog ledger", "CREATE SCHEMA IF NOT EXISTS tenantd", 0,
                       NULL, NULL);
    if (rc == 0)
        rc = db_admin_exec(pg, "creating the catalog ledger", ddl, 0, NULL, NULL);
    free(ddl);
    if (rc == 0)
        rc = mig_ledger_read(pg, "tenantd.catalog_migrations", &l);
    if (rc == 0 && (rc = mig_pending(s, &l, pending, &np, &err)) < 0)
        td_log_error("catalog %s", err);
    for (int k = 0; rc == 0 && k < np; k++) {
        const struct mig_file *m = &s->files[pending[k]];
        long long t0 = td_now_ms();
        rc = db_admin_exec(pg, m->name, "BEGIN", 0, NULL, NULL);
        if (rc == 0)
            rc = db_admin_exec(pg, m->name, m->sql, 0, NULL, NULL);
        if (rc == 0)
            rc = ledger_record(pg, "tenantd.catalog_migrations", m, td_now_ms() - t0);
        if (rc == 0)
            rc = db_admin_exec(pg, m->name, "COMMIT", 0, NULL, NULL);
        if (rc < 0) {
            td_log_error("catalog migration %s failed", m->name);
            PQclear(PQexec(pg, "ROLLBACK"));
        } else {
            td_log_info("applied catalog migration %s", m->name);
        }
    }
    PQclear(PQexec(pg, "SELECT pg_advisory_unlock(" CATALOG_LOCK ")"));
out:
    mig_ledger_cleanup(&l);
    free(pending);
    return rc < 0 ? TD_EINTERNAL : 0;
}

int mig_apply_tenant_v(PGconn *pg, const char *schema, const struct mig_set *s, int *applied,
                       int *version, char **err)
{
    static __thread char msg[512];
    struct mig_ledger l = {0};
    int *pending = td_xcalloc((size_t)s->n + 1, sizeof(int));
    int np = 0;
    *applied = 0;
    *version = 0;
    *err = NULL;
    char *qs = tnt_name_quote(pg, schema);
    if (!qs) {
        free(pending);
        return TD_EINTERNAL;
    }
    char *ledger = td_xasprintf("%s.tenantd_migrations", qs);
    char *sql = NULL;
    int rc = db_admin_exec(pg, "setting search_path", "SELECT set_config('search_path', $1, true)",
                           1, (const char *const[]){qs}, NULL);
    if (rc == 0)
        rc = mig_ledger_read(pg, ledger, &l);
    if (rc == 0)
        rc = mig_pending(s, &l, pending, &np, err);
    if (rc == 0 && np > 0 && l.n == 0) {
        sql = td_xasprintf(ledger_ddl, ledger);
        rc = db_admin_exec(pg, "creating a tenant ledger", sql, 0, NULL, NULL);
        free(sql);
    }
    for (int k = 0; rc == 0 && k < np; k++) {
        const struct mig_file *m = &s->files[pending[k]];
        long long t0 = td_now_ms();
        PGresult *r = PQexec(pg, m->sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
            const char *e = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
            if (!e)
                e = PQerrorMessage(pg);
            snprintf(msg, sizeof(msg), "%s.sql: %.*s", m->name, (int)strcspn(e, "\n"), e);
            *err = msg;
            rc = PQstatus(pg) == CONNECTION_BAD ? TD_EUNAVAILABLE : TD_EINTERNAL;
        }
        PQclear(r);
        char why[400];
        if (rc == 0 && (rc = mig__check_tenant(pg, why, sizeof(why))) < 0) {
            snprintf(msg, sizeof(msg), "%s.sql: %s", m->name, why);
            *err = msg;
        }
        if (rc == 0)
            rc = ledger_record(pg, ledger, m, td_now_ms() - t0);
        if (rc == 0)
            (*applied)++;
    }
    if (rc == 0)
        *version = l.max_version > mig_latest(s) ? l.max_version : mig_latest(s);
    else if (!*err) {
        snprintf(msg, sizeof(msg), "%.*s", (int)strcspn(PQerrorMessage(pg), "\n"),
                 PQerrorMessage(pg));
        *err = msg;
    }
    mig_ledger_cleanup(&l);
    free(pending);
    free(ledger);
    PQfreemem(qs);
    return rc;
}

int mig_apply_tenant(PGconn *pg, const char *schema, const struct mig_set *s, int *applied,
                     char **err)
{
    int version;
    return mig_apply_tenant_v(pg, schema, s, applied, &version, err);
}

int mig_apply_baseline(PGconn *pg, const char *schema, const struct mig_set *s)
{
    char *q = tnt_name_quote(pg, schema);
    if (!q)
        return TD_EINTERNAL;
    char *lit = PQescapeLiteral(pg, q, strlen(q));
    char *sql = td_xasprintf("CREATE SCHEMA %s; SELECT set_config('search_path', %s, true);\n%s", q,
                             lit, s->baseline ? s->baseline : "");
    int rc = db_admin_exec(pg, "creating the tenant schema", sql, 0, NULL, NULL);
    free(sql);
    PQfreemem(lit);
    PQfreemem(q);
    return rc;
}

int mig_grant_schema(PGconn *pg, const char *schema, const char *grantee)
{
    char *q = tnt_name_quote(pg, schema);
    /* the grantee is the tenant's role (its schema's name) or the runtime role */
    char *g = strcmp(grantee, "tenantd_app") ? tnt_name_quote(pg, grantee)
                                             : PQescapeIdentifier(pg, grantee, strlen(grantee));
    char *ledger = q ? td_xasprintf("%s.tenantd_migrations", q) : NULL;
    char *lit = ledger ? PQescapeLiteral(pg, ledger, strlen(ledger)) : NULL;
    int rc = TD_EINTERNAL;
    if (q && g && lit) {
        char *sql =
            td_xasprintf("GRANT USAGE ON SCHEMA %s TO %s; "
                         "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %s TO %s; "
                         "GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %s TO %s; "
                         "DO $$ BEGIN IF to_regclass(%s) IS NOT NULL THEN "
                         "REVOKE ALL ON %s FROM %s; END IF; END $$",
                         q, g, q, g, q, g, lit, ledger, g);
        rc = db_admin_exec(pg, "granting tenant privileges", sql, 0, NULL, NULL);
        free(sql);
    }
    PQfreemem(lit);
    free(ledger);
    PQfreemem(g);
    PQfreemem(q);
    return rc;
}
