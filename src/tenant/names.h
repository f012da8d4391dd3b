/*
 * names.h - the names of a tenant's storage (its schema, role and database), built from
 * the tenant id in one place and quoted for SQL text in one place. Storage names never
 * come from user text (SPEC §5): every name is "pool" or derived from a UUID.
 */
#ifndef TD_TENANT_NAMES_H
#define TD_TENANT_NAMES_H

#include "core/err.h"

#include <libpq-fe.h>
#include <stddef.h>

enum tnt_name_kind {
    TNT_NAME_SCHEMA,   /* "t_<32 hex>": schema of a schema or database tenant */
    TNT_NAME_ROLE,     /* "t_<32 hex>": the tenant's role (same text as its schema) */
    TNT_NAME_DATABASE, /* "td_<32 hex>": database of a database tenant */
};

#define TNT_NAME_MAX 36

/*
 * The storage name of kind for tenant_id (a UUID, any case) into out[TNT_NAME_MAX].
 * Returns 0, or TD_EVALIDATION when tenant_id is not a UUID (out is then ""). Pure.
 */
int tnt_name_of(const char *tenant_id, enum tnt_name_kind kind, char *out) TD_MUSTCHECK;

/*
 * name quoted for SQL text with PQescapeIdentifier on pg, after checking it is a storage
 * name tenantd makes: "pool", "t_<32 lowercase hex>" or "td_<32 lowercase hex>". The result
 * is the caller's (PQfreemem); NULL (logged) for any other text or when quoting failed.
 * This is the only way storage identifiers enter SQL text.
 */
char *tnt_name_quote(PGconn *pg, const char *name);

/* 1 when name has one of the forms tnt_name_quote accepts. Pure. */
int tnt_name_valid(const char *name);

#endif
