/*
 * export.h - a tenant as NDJSON and back: a header line
 * {"format":"tenantd-export","version":1,"tenant":{...}}, then one
 * {"table":"users|projects|audit_logs","row":{...}} line per row (password hashes
 * included; tenant_id left out, it is the tenant's). Import recreates the rows, ids and
 * timestamps kept, in a new tenant.
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
 * Start reading every row t owns, in one statement (one snapshot), on a connection of
 * its own to t's storage. The first row is fetched before returning, so an unreachable
 * storage is reported here. *out is the caller's until tnt_export_close(). Returns 0,
 * TD_EUNAVAILABLE or TD_EINTERNAL. Blocking; use from one thread at a time.
 */
int tnt_export_open(struct db *db, const struct tnt_tenant *t,
                    struct tnt_export **out) TD_MUSTCHECK;
/* Next line, without its newline (the header first). Returns 1 with *line (valid until
 * the next call) and *len, 0 after the last line, or TD_EINTERNAL when the read failed
 * midway (logged). */
int tnt_export_next(struct tnt_export *e, const char **line, size_t *len) TD_MUSTCHECK;
/* Close the connection and free e. NULL ok. */
void tnt_export_close(struct tnt_export *e);

#define TNT_EXPORT_TABLES 3

/* A parsed export: the header's tenant object and each table's rows (JSON arrays, in
 * the order of tnt_export_tables). */
struct tnt_import_data {
    json_t *tenant;
    json_t *rows[TNT_EXPORT_TABLES];
};

/* "users", "projects", "audit_logs". */
extern const char *const tnt_export_tables[TNT_EXPORT_TABLES];

/*
 * Parse an export (lines separated by \n or \r\n; blank lines skipped). Returns 0 and
 * fills d (free with tnt_import_data_cleanup), TD_EINVALID_JSON (a line is not JSON), or
 * TD_EVALIDATION (no header, wrong format or version, a line not {"table","row"} or an
 * unknown table); detail[cap] then says which line and why. Pure; thread-safe.
 */
int tnt_import_parse(const char *body, size_t len, struct tnt_import_data *d, char *detail,
                     size_t cap) TD_MUSTCHECK;
void tnt_import_data_cleanup(struct tnt_import_data *d);

/*
 * Provision a new tenant from n (its owner must be NULL), give it status ("active" or
 * "suspended") and subscription_expires_at (RFC 3339 text or NULL), and insert d's rows
 * with their ids and timestamps; all or nothing. *out gets the tenant (1 ref). Returns
 * 0, TD_ECONFLICT (slug taken, or a row id already exists in that storage; *detail
 * says which), TD_EVALIDATION (a row or the timestamp does not fit), TD_EUNAVAILABLE or
 * TD_EINTERNAL. *detail is static storage or NULL.
 */
int tnt_import(struct db *db, const struct mig_set *migs, const struct tnt_new *n,
               const char *status, const char *expires, const struct tnt_import_data *d,
               struct tnt_tenant **out, const char **detail) TD_MUSTCHECK;

/*
 * Replace every row t owns with d's rows (ids and timestamps kept), in one transaction on
 * t's storage: all or nothing. The tenant's catalog row is left alone. Returns 0 or the
 * codes of tnt_import; *detail is static storage or NULL.
 */
int tnt_import_replace(struct db *db, const struct tnt_tenant *t, const struct tnt_import_data *d,
                       const char **detail) TD_MUSTCHECK;

#endif
