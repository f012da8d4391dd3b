/*
 * err.h - error codes shared by every subsystem.
 *
 * Functions that can fail return 0 or a negative TD_E* code; results travel through
 * out-parameters. Only src/http/problem.c turns a code into an HTTP status.
 */
#ifndef TD_CORE_ERR_H
#define TD_CORE_ERR_H

#define TD_MUSTCHECK __attribute__((warn_unused_result))

enum td_err {
    TD_OK = 0,
    TD_EINTERNAL = -1,     /* a bug or an unexpected failure: 500 */
    TD_EINVALID_JSON = -2, /* body is not valid UTF-8 JSON */
    TD_EVALIDATION = -3,   /* a JSON value of the wrong type, missing, empty, too long */
    TD_EBADREQ = -4,       /* bad query parameter, cursor, confirm ... */
    TD_ETENANT_REQUIRED = -5,
    TD_EUNAUTHORIZED = -6,
    TD_EEXPIRED = -7, /* subscription expired: 402 */
    TD_EFORBIDDEN = -8,
    TD_EMISMATCH = -9, /* token's tenant differs from the request's */
    TD_ESUSPENDED = -10,
    TD_EQUOTA = -11,
    TD_ENOTFOUND = -12,
    TD_ETENANT_NOTFOUND = -13,
    TD_ECONFLICT = -14,
    TD_ETOOLARGE = -15,
    TD_ERATELIMIT = -16,
    TD_EUNAVAILABLE = -17, /* database unreachable or pool exhausted: 503 */
    TD_EMETHOD = -18,      /* route exists, method does not: 405 */
    TD_EHEADERS = -19,     /* request header block over its limit: 431 */
};

/* Stable snake_case name of a code, as used in problem+json ("not_found"). */
const char *td_err_code(int err);

#endif
