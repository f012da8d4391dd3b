/*
 * export.h - a tenant as NDJSON and back: a header line
 * {"format":"tenantd-export","version":1,"tenant":{...}}, then one
 * {"table":"<name>","row":{...}} line per row of every tenant table (read from the
 * PostgreSQL catalog, parents before the tables that reference them), every column but
 * tenant_id, private columns and password hashes included (it is a backup). Import
 * recreates the rows in a new tenant with every value as exported, ids and timestamps
 * included. Both directions stream: memory does not grow with the tenant's size.
 */
#ifndef TD_TENANT_EXPORT_H
#define TD_TENANT_EXPORT_H

#include "migrate/files.h"
#include "tenant/provision.h"
#include "tenant/tenant.h"

#include <jansson.h>
#include <stddef.h>

#define TNT_EXPORT_FORMAT "tenantd-export"
#define TNT_EXPORT_VERSION 1

struct tnt_export;

/*
 * Start reading every row t owns, in one REPEATABLE READ transaction (one snapshot), on a
 * connection of its own to t's storage. The first row is fetched before returning, so an
 * unreachable storage is reported here. *out is the caller's until tnt_export_close().
 * Returns 0, TD_EUNAVAILABLE (also when t's server is not configured: logged) or
 * TD_EINTERNAL. Blocking; use from one thread at a time.
 */
int tnt_export_open(struct db *db, const struct tnt_tenant *t,
                    struct tnt_export **out) TD_MUSTCHECK;
/* Next line, without its newline (the header first). Returns 1 with *line (valid until
 * the next call) and *len, 0 after the last line, or TD_EINTERNAL when the read failed
 * midway (logged). Rows come in single-row mode: one in memory at a time. */
int tnt_export_next(struct tnt_export *e, const char **line, size_t *len) TD_MUSTCHECK;
/* Close the connection and free e. NULL ok. */
void tnt_export_close(struct tnt_export *e);

/* ---- import ---------------------------------------------------------------- */

struct tnt_import;

/*
 * Called once, when the header line has been read: decide the new tenant from the
 * exported tenant object (borrowed until the import ends). Fill n (slug, name, plan,
 * isolation, server; owner must stay NULL), *status ("active" or "suspended") and
 * *expires (RFC 3339 text or NULL); strings must live until the import ends. Return 0, or
 * a TD_E* code with *detail (which must live as long) to refuse the import.
 */
typedef int (*tnt_import_header_fn)(void *ctx, json_t *tenant, struct tnt_new *n,
                                    const char **status, const char **expires, const char **detail);

/* Start an import; nothing is made until the header line arrives. *out is the caller's
 * until tnt_import_free(). */
void tnt_import_begin(struct db *db, const struct mig_set *migs, tnt_import_header_fn on_header,
                      void *ctx, struct tnt_import **out);
/*
 * Feed the next len bytes of the export, split anywhere (lines end with \n or \r\n; blank
 * lines are skipped). The header provisions the tenant; rows are inserted in batches inside
 * one transaction. Returns 0, or on the first failure TD_EINVALID_JSON (a line is not
 * JSON), TD_EVALIDATION (no header, wrong format or version, a line not
 * {"table","row"}, an unknown table or column, a value that does not fit), TD_ECONFLICT
 * (slug taken, or a row key that exists already), TD_EUNAVAILABLE or TD_EINTERNAL; then
 * tnt_import_detail says which line and why, and every later call returns the same code.
 */
int tnt_import_feed(struct tnt_import *im, const char *data, size_t len) TD_MUSTCHECK;
/*
 * The input is complete: insert what is left and commit. *out gets the new tenant (1 ref).
 * Returns 0 or a code as for tnt_import_feed (an empty input is TD_EVALIDATION).
 */
int tnt_import_finish(struct tnt_import *im, struct tnt_tenant **out) TD_MUSTCHECK;
/* Why the import failed (valid until tnt_import_free), or NULL. */
const char *tnt_import_detail(const struct tnt_import *im);
/* Rows inserted so far (committed once tnt_import_finish returned 0). */
long long tnt_import_rows(const struct tnt_import *im);
/* Free im; an import not finished is undone: the new tenant, if made, is dropped. NULL ok. */
void tnt_import_free(struct tnt_import *im);

/*
 * An import over t's rows instead of into a new tenant (a restore in place): the header is
 * checked but decides nothing; every row t owns, in every tenant table, is deleted and the
 * export's rows inserted in their place, in one transaction on t's storage, all or nothing.
 * t's catalog row is left alone and t is never dropped. Feed, finish and free as above;
 * tnt_import_finish gives t back (1 ref).
 */
void tnt_import_begin_replace(struct db *db, const struct tnt_tenant *t, struct tnt_import **out);

#endif
