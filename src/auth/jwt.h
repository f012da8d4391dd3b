/*
 * jwt.h - HS256 user tokens (libjwt): claims sub, tid, role, iat, exp.
 */
#ifndef TD_AUTH_JWT_H
#define TD_AUTH_JWT_H

#include "core/cachestats.h"
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
 * Returns 0 or TD_EUNAUTHORIZED. Thread-safe; remembers nothing.
 */
int auth_jwt_verify(const char *secret, const char *token, time_t now,
                    struct auth_claims *c) TD_MUSTCHECK;

/* One signing secret and the tokens verified with it (one per application). */
struct auth_jwt;

/* A verifier for secret (copied) remembering verified tokens in at most budget bytes
 * (64 a token; at least one set of 8). Allocation failure aborts. */
struct auth_jwt *auth_jwt_new(const char *secret, size_t budget);
/* Free j and every token it remembers. NULL is a no-op. */
void auth_jwt_free(struct auth_jwt *j);
/* auth_jwt_verify() with j's secret; a token verified before is answered from a bounded
 * cache (exp still checked against now), so the answer is always a full verification's.
 * Thread-safe. */
int auth_jwt_check(struct auth_jwt *j, const char *token, time_t now,
                   struct auth_claims *c) TD_MUSTCHECK;
/* How many checks were verified in full (not answered from the cache). */
unsigned long auth_jwt_verified(struct auth_jwt *j);
/* The cache's hits, misses (full verifications), evictions and size. Thread-safe. */
void auth_jwt_stats(struct auth_jwt *j, struct td_cache_stats *out);

/* 1 when s is a canonical lowercase-or-uppercase UUID text (8-4-4-4-12 hex). */
int auth_is_uuid(const char *s);

#endif
