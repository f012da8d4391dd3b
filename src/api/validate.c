/*
 * validate.c - input checks shared by the handlers.
 */
#include "api/validate.h"

#include "auth/jwt.h"
#include "tenant/check.h"

#include <ctype.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

size_t api_utf8_len(const char *s)
{
    return tnt_text_len(s);
}

int api_field_str(struct http_req *req, json_t *obj, const char *name, int required, size_t max,
                  const char **out, const char **detail)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (!required)
            return 0;
        *detail = td_arena_printf(req->arena, "%s is required", name);
        return TD_EVALIDATION;
    }
    if (!json_is_string(v)) {
        *detail = td_arena_printf(req->arena, "%s must be a string", name);
        return TD_EVALIDATION;
    }
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v)) {
        *detail = td_arena_printf(req->arena, "%s must not contain NUL", name);
        return TD_EVALIDATION;
    }
    if (tnt_text_blank(s)) {
        *detail = td_arena_printf(req->arena, "%s must not be empty", name);
        return TD_EVALIDATION;
    }
    if (api_utf8_len(s) > max) {
        *detail = td_arena_printf(req->arena, "%s must be at most %zu characters", name, max);
        return TD_EVALIDATION;
    }
    *out = s;
    return 0;
}

int api_field_not_null(struct http_req *req, json_t *obj, const char *name, const char **detail)
{
    json_t *v = json_object_get(obj, name);
    if (v && json_is_null(v)) {
        *detail = td_arena_printf(req->arena, "%s cannot be null", name);
        return TD_EVALIDATION;
    }
    return 0;
}

int api_field_enum(struct http_req *req, json_t *obj, const char *name, int required,
                   const char *const *allowed, const char **out, const char **detail)
{
    int rc = api_field_str(req, obj, name, required, 64, out, detail);
    if (rc < 0 || !*out)
        return rc;
    for (const char *const *a = allowed; *a; a++)
        if (strcmp(*a, *out) == 0)
            return 0;
    *detail = td_arena_printf(req->arena, "%s has an unknown value", name);
    return TD_EVALIDATION;
}

int api_check_email(struct http_req *req, const char *email, const char **detail)
{
    if (!tnt_email_ok(email)) {
        *detail = td_arena_strdup(req->arena, "email is not a valid address");
        return TD_EVALIDATION;
    }
    return 0;
}

int api_check_password(struct http_req *req, const char *pw, const char **detail)
{
    if (!tnt_password_ok(pw)) {
        *detail = td_arena_strdup(req->arena, "password must have 8 to 128 characters");
        return TD_EVALIDATION;
    }
    return 0;
}

int api_check_slug(const char *slug)
{
    return tnt_slug_ok(slug);
}

int api_no_unknown(struct http_req *req, json_t *obj, const char *const *allowed,
                   const char **detail)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        const char *const *a = allowed;
        while (*a && strcmp(*a, key) != 0)
            a++;
        if (!*a) {
            *detail = td_arena_printf(req->arena, "unknown field \"%.64s\"", key);
            return TD_EVALIDATION;
        }
    }
    return 0;
}

int api_paging(struct http_req *req, int *limit, const char **cursor_us, const char **cursor_id,
               const char **detail)
{
    const char *l = http_query(req, "limit");
    const char *c = http_query(req, "cursor");
    *limit = 20;
    *cursor_us = *cursor_id = NULL;
    if (l) {
        char *end;
        long v = strtol(l, &end, 10);
        if (!*l || *end || v < 1 || v > 100) {
            *detail = "limit must be an integer from 1 to 100";
            return TD_EBADREQ;
        }
        *limit = (int)v;
    }
    if (c) {
        char buf[96];
        size_t len = 0;
        if (sodium_base642bin((unsigned char *)buf, sizeof(buf) - 1, c, strlen(c), NULL, &len, NULL,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
            goto bad;
        buf[len] = '\0';
        char *us = strchr(buf, '_');
        if (!us || us == buf || strlen(us + 1) != 36 || !auth_is_uuid(us + 1))
            goto bad;
        *us = '\0';
        for (char *p = buf; *p; p++)
            if (!isdigit((unsigned char)*p))
                goto bad;
        if (strlen(buf) > 18)
            goto bad;
        *cursor_us = td_arena_strdup(req->arena, buf);
        *cursor_id = td_arena_strdup(req->arena, us + 1);
    }
    return 0;
bad:
    *detail = "cursor is not valid";
    return TD_EBADREQ;
}
