/*
 * jwt.h - HS256 user tokens (libjwt): claims sub, tid, role, iat, exp.
 */
#ifndef TD_AUTH_JWT_H
#define TD_AUTH_JWT_H

#include "core/err.h"
#include "http/request.h"

#include <time.h>

/* Sign a token for user sub of tenant tid; *out is a heap string the caller frees.
 * Returns 0 or TD_EINTERNAL. Thread-safe. */
int auth_jwt_sign(const char *secret, const char *sub, const char *tid, const char *role,
                  time_t now, int ttl, char **out) TD_MUSTCHECK;

/*
 * Verify token against secret at time now: HS256 only (any other alg, "none" included,
 * fails), signature, exp > now, and claims sub/tid (UUIDs) and role present. Fills *c.
 * Returns 0 or TD_EUNAUTHORIZED. Thread-safe. A token verified before under the same
 * secret is answered from a bounded cache (exp still checked against now).
 */
int auth_jwt_verify(const char *secret, const char *token, time_t now,
                    struct auth_claims *c) TD_MUSTCHECK;

/* Forget every verified token auth_jwt_verify remembers (at exit, for leak checkers). */
void auth_jwt_cache_clear(void);

/* 1 when s is a canonical lowercase-or-uppercase UUID text (8-4-4-4-12 hex). */
int auth_is_uuid(const char *s);

#endif
