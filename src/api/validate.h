/*
 * validate.h - checks of JSON request fields per SPEC §3: lengths in code points,
 * whitespace-only strings count as empty, emails, passwords, slugs, UUIDs, paging.
 * On failure each returns TD_EVALIDATION (or TD_EBADREQ for query parameters) and
 * writes a detail into the request arena via *detail.
 */
#ifndef TD_API_VALIDATE_H
#define TD_API_VALIDATE_H

#include "http/request.h"

#include <jansson.h>

/* Unicode code points of a valid UTF-8 string. */
size_t api_utf8_len(const char *s);

/*
 * Read string field `name` of obj. required: missing or null is an error; otherwise
 * *out is NULL when absent. Non-empty (not only whitespace), at most max code points.
 * null_ok: an explicit null is accepted and reported through *is_null.
 */
int api_field_str(struct http_req *req, json_t *obj, const char *name, int required, size_t max,
                  const char **out, const char **detail) TD_MUSTCHECK;
/* For PATCH: a member that is present must not be null (fields that cannot be cleared). */
int api_field_not_null(struct http_req *req, json_t *obj, const char *name,
                       const char **detail) TD_MUSTCHECK;
/* Like api_field_str with an allowed set (NULL-terminated). */
int api_field_enum(struct http_req *req, json_t *obj, const char *name, int required,
                   const char *const *allowed, const char **out, const char **detail) TD_MUSTCHECK;
int api_check_email(struct http_req *req, const char *email, const char **detail) TD_MUSTCHECK;
int api_check_password(struct http_req *req, const char *pw, const char **detail) TD_MUSTCHECK;
/* 1 when slug matches ^[a-z][a-z0-9-]{1,38}[a-z0-9]$ and is not UUID-shaped (it would
 * read as an id wherever "{id or slug}" is accepted), else 0. */
int api_check_slug(const char *slug);
/* Reject fields of obj not in allowed (NULL-terminated). */
int api_no_unknown(struct http_req *req, json_t *obj, const char *const *allowed,
                   const char **detail) TD_MUSTCHECK;

/* ?limit= (1..100, default 20) and ?cursor= (opaque "micros_uuid"). cursor_us/cursor_id
 * are NULL when no cursor was given. */
int api_paging(struct http_req *req, int *limit, const char **cursor_us, const char **cursor_id,
               const char **detail) TD_MUSTCHECK;

#endif
