/*
 * console.h - the operator console at /console: its static files (compiled into the binary
 * from console/ by cmake/embed_console.cmake) and its sign-in, which exchanges the operator
 * token once for a session cookie. The cookie is stateless: an expiry and a nonce, MACed
 * with a key derived from the operator token, so it works across restarts and instances and
 * dies when the token changes.
 */
#ifndef TD_API_CONSOLE_H
#define TD_API_CONSOLE_H

#include "http/request.h"

#include <stddef.h>

struct api_console_asset {
    const char *name; /* file name under console/, NULL ends the table */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
};
/* The generated table (console_assets.c in the build directory). */
extern const struct api_console_asset api_console_assets[];

/* Seconds a console session lasts. */
#define API_CONSOLE_SESSION_TTL (8 * 3600)

/* GET /console and /console/{file}: the page and its scripts, with a strict CSP. */
int api_console_asset(struct http_req *req);
/* POST /console/session {"token"}: 201 {csrf_token,expires_at} and the session cookie;
 * GET: the same for a valid cookie (a reloaded page), else 204; DELETE: clears it, 204. */
int api_console_sign_in(struct http_req *req);
int api_console_session(struct http_req *req);
int api_console_sign_out(struct http_req *req);

/*
 * For the admin guard, when the request has no bearer token: 0 when it carries a valid,
 * unexpired session cookie and, for anything but GET and HEAD, the session's CSRF token
 * in X-CSRF-Token; else TD_EUNAUTHORIZED (no or bad cookie) or TD_EFORBIDDEN (CSRF), with
 * *detail saying why. Thread-safe.
 */
int api_console_check(struct http_req *req, const char **detail) TD_MUSTCHECK;

#endif
