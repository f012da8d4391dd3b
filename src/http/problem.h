/*
 * problem.h - the one place where error codes become HTTP statuses and RFC 9457
 * application/problem+json bodies.
 */
#ifndef TD_HTTP_PROBLEM_H
#define TD_HTTP_PROBLEM_H

#include "http/request.h"

#include <jansson.h>

/* HTTP status for a TD_E* code (500 for unknown codes). */
int http_problem_status(int err);
/* Queue a problem response for err with a human-readable detail (may be NULL).
 * 429 and 503 carry Retry-After (set one first with http_set_header to override).
 * Returns 0 so handlers can `return http_problem_send(...)`. */
/* The problem object of err (with detail, NULL: the title) for a body that carries one
 * inside (a failed job). Caller json_decref()s. */
json_t *http_problem_json(int err, const char *detail);

int http_problem_send(struct http_req *req, int err, const char *detail);

#endif
