/*
 * jwt.c - signing and verification of user tokens with libjwt, HS256 only.
 */
#include "auth/jwt.h"

#include <ctype.h>
#include <errno.h>
#include <jwt.h>
#include <stdlib.h>
#include <string.h>

int auth_is_uuid(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return 0;
        } else if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

int auth_jwt_sign(const char *secret, const char *sub, const char *tid, const char *role,
                  time_t now, int ttl, char **out)
{
    jwt_t *jwt = NULL;
    int rc = TD_EINTERNAL;
    *out = NULL;
    if (jwt_new(&jwt) != 0)
        goto out;
    if (jwt_add_grant(jwt, "sub", sub) || jwt_add_grant(jwt, "tid", tid) ||
        jwt_add_grant(jwt, "role", role) || jwt_add_grant_int(jwt, "iat", (long)now) ||
        jwt_add_grant_int(jwt, "exp", (long)(now + ttl)))
        goto out;
    if (jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)secret, (int)strlen(secret)))
        goto out;
    *out = jwt_encode_str(jwt);
    if (*out)
        rc = 0;
out:
    jwt_free(jwt);
    return rc;
}

static int copy_claim(jwt_t *jwt, const char *name, char *dst, size_t cap)
{
    const char *v = jwt_get_grant(jwt, name);
    if (!v || strlen(v) >= cap)
        return -1;
    strcpy(dst, v);
    return 0;
}

/* Three dot-separated base64url parts, the first two non-empty. libjwt 1.10 writes past
 * an empty buffer on an empty part, so such tokens never reach it. */
static int well_formed(const char *token)
{
    int part = 0;
    size_t len = 0;
    for (const char *p = token;; p++) {
        if (*p == '.' || *p == '\0') {
            if (part < 2 && len == 0)
                return 0;
            part++;
            len = 0;
            if (*p == '\0')
                break;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return 0;
        len++;
    }
    return part == 3;
}

int auth_jwt_verify(const char *secret, const char *token, time_t now, struct auth_claims *c)
{
    jwt_t *jwt = NULL;
    int rc = TD_EUNAUTHORIZED;
    memset(c, 0, sizeof(*c));
    if (!token || strlen(token) > 4096 || !well_formed(token))
        goto out;
    if (jwt_decode(&jwt, token, (const unsigned char *)secret, (int)strlen(secret)) != 0)
        goto out;
    if (jwt_get_alg(jwt) != JWT_ALG_HS256)
        goto out;
    if (copy_claim(jwt, "sub", c->sub, sizeof(c->sub)) ||
        copy_claim(jwt, "tid", c->tid, sizeof(c->tid)) ||
        copy_claim(jwt, "role", c->role, sizeof(c->role)))
        goto out;
    if (!auth_is_uuid(c->sub) || !auth_is_uuid(c->tid))
        goto out;
    if (strcmp(c->role, "owner") && strcmp(c->role, "admin") && strcmp(c->role, "member"))
        goto out;
    errno = 0;
    long exp = jwt_get_grant_int(jwt, "exp");
    if (errno != 0 || exp <= (long)now)
        goto out;
    c->exp = exp;
    rc = 0;
out:
    jwt_free(jwt);
    if (rc < 0)
        memset(c, 0, sizeof(*c));
    return rc;
}
