/*
 * err.c - names of the error codes of err.h.
 */
#include "core/err.h"

const char *td_err_code(int err)
{
    switch (err) {
    case TD_OK:
        return "ok";
    case TD_EINVALID_JSON:
        return "invalid_json";
    case TD_EVALIDATION:
        return "validation_failed";
    case TD_EBADREQ:
        return "bad_request";
    case TD_ETENANT_REQUIRED:
        return "tenant_required";
    case TD_EUNAUTHORIZED:
        return "unauthorized";
    case TD_EEXPIRED:
        return "subscription_expired";
    case TD_EFORBIDDEN:
        return "forbidden";
    case TD_EMISMATCH:
        return "tenant_mismatch";
    case TD_ESUSPENDED:
        return "tenant_suspended";
    case TD_EQUOTA:
        return "quota_exceeded";
    case TD_ENOTFOUND:
        return "not_found";
    case TD_ETENANT_NOTFOUND:
        return "tenant_not_found";
    case TD_ECONFLICT:
        return "conflict";
    case TD_ETOOLARGE:
        return "payload_too_large";
    case TD_ERATELIMIT:
        return "rate_limited";
    case TD_EUNAVAILABLE:
        return "unavailable";
    case TD_EMETHOD:
        return "method_not_allowed";
    case TD_EHEADERS:
        return "headers_too_large";
    default:
        return "internal";
    }
}
