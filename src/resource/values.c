/*
 * values.c - a value for a column, checked before PostgreSQL sees it: a JSON value of a
 * write (400 validation_failed naming the field), or the text of a filter or cursor value
 * (400 bad_request). What passes is bound as a parameter's text, cast in SQL.
 */
#include "resource/resource.h"

#include "auth/jwt.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* YYYY-MM-DD with a day that exists; returns the characters read or 0. */
static int date_ok(const char *s)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (strlen(s) < 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
        !digits(s + 8, 2))
        return 0;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return 0;
    if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return 0;
    return 10;
}

/* RFC 3339 date-time; zone required when tz (timestamptz), optional otherwise. */
static int time_ok(const char *s, int tz)
{
    if (!date_ok(s))
        return 0;
    s += 10;
    if (*s != 'T' && *s != 't' && *s != ' ')
        return 0;
    s++;
    if (!digits(s, 2) || s[2] != ':' || !digits(s + 3, 2) || s[5] != ':' || !digits(s + 6, 2))
        return 0;
    if (atoi(s) > 23 || atoi(s + 3) > 59 || atoi(s + 6) > 60)
        return 0;
    s += 8;
    if (*s == '.') {
        s++;
        int n = 0;
        while (isdigit((unsigned char)s[n]))
            n++;
        if (n == 0 || n > 9)
            return 0;
        s += n;
    }
    if (*s == 'Z' || *s == 'z')
        return s[1] == '\0';
    if (*s == '+' || *s == '-')
        return digits(s + 1, 2) && s[3] == ':' && digits(s + 4, 2) && s[6] == '\0' &&
               atoi(s + 1) < 24 && atoi(s + 4) < 60;
    return *s == '\0' && !tz;
}

static int number_ok(const char *s)
{
    if (*s == '-' || *s == '+')
        s++;
    int n = 0;
    while (isdigit((unsigned char)s[n]))
        n++;
    s += n;
    if (*s == '.') {
        s++;
        int f = 0;
        while (isdigit((unsigned char)s[f]))
            f++;
        n += f;
        s += f;
    }
    if (n == 0 || n > 1000)
        return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+')
            s++;
        int e = 0;
        while (isdigit((unsigned char)s[e]))
            e++;
        if (e == 0 || e > 4)
            return 0;
        s += e;
    }
    return *s == '\0';
}

static int int_ok(const char *s, int bits)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || isspace((unsigned char)*s))
        return 0;
    if (bits == 16)
        return v >= -32768 && v <= 32767;
    if (bits == 32)
        return v >= -2147483648LL && v <= 2147483647LL;
    return 1;
}

int res_value_text_ok(const struct res_col *c, const char *v)
{
    switch (c->kind) {
    case RES_INT:
        return int_ok(v, c->int_bits) ? 0 : -1;
    case RES_NUMERIC:
    case RES_FLOAT:
        return number_ok(v) ? 0 : -1;
    case RES_BOOL:
        return !strcmp(v, "true") || !strcmp(v, "false") ? 0 : -1;
    case RES_UUID:
        return auth_is_uuid(v) ? 0 : -1;
    case RES_DATE:
        return date_ok(v) && v[10] == '\0' ? 0 : -1;
    case RES_TSTZ:
    case RES_TS:
        return time_ok(v, c->kind == RES_TSTZ) ? 0 : -1;
    default:
        return 0;
    }
}

/* A scalar JSON value for kind k of c into its parameter text. */
/* Whether number text v (number_ok) fits numeric(p,s) of c: at most p - s digits before
 * the point once the exponent is applied (PostgreSQL would refuse it with 22003, which
 * cannot name the column). Columns without a precision take any. */
static int numeric_fits(const struct res_col *c, const char *v)
{
    int p, sc = 0;
    if (c->kind != RES_NUMERIC || sscanf(c->sqltype, "numeric(%d,%d)", &p, &sc) < 1)
        return 1;
    const char *d = v + (*v == '-' || *v == '+');
    while (*d == '0')
        d++;
    long digits = 0, first = -1, pos = 0;
    for (; isdigit((unsigned char)*d) || *d == '.'; d++) {
        if (*d == '.') {
            if (first < 0)
                first = pos; /* digits before the point (leading zeros dropped) */
            continue;
        }
        pos++;
    }
    digits = first < 0 ? pos : first;
    if (*d == 'e' || *d == 'E')
        digits += strtol(d + 1, NULL, 10);
    /* 0.x and values that round down to no integer digit always fit */
    return digits <= (long)(p - sc) || (digits <= 0);
}

static int scalar(const struct res_col *c, json_t *v, struct td_arena *a, const char **text,
                  const char **why)
{
    char buf[64];
    switch (c->kind) {
    case RES_INT:
        if (!json_is_integer(v))
            return *why = "must be an integer", -1;
        snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        if (!int_ok(buf, c->int_bits))
            return *why = "is out of range", -1;
        return *text = td_arena_strdup(a, buf), 0;
    case RES_NUMERIC:
    case RES_FLOAT:
        if (json_is_integer(v))
            snprintf(buf, sizeof(buf), "%lld", (long long)json_integer_value(v));
        else if (json_is_real(v))
            snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
        else if (json_is_string(v) && c->kind == RES_NUMERIC && number_ok(json_string_value(v)))
            snprintf(buf, sizeof(buf), "%s", "");
        else
            return *why = "must be a number", -1;
        *text = buf[0] ? td_arena_strdup(a, buf) : json_string_value(v);
        if (!numeric_fits(c, *text))
            return *why = "is out of range for its precision", -1;
        return 0;
    case RES_BOOL:
        if (!json_is_boolean(v))
            return *why = "must be true or false", -1;
        return *text = json_is_true(v) ? "true" : "false", 0;
    case RES_JSON: {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        *text = td_arena_strdup(a, s ? s : "null");
        free(s);
        return 0;
    }
    default:
        break;
    }
    if (!json_is_string(v))
        return *why = "must be a string", -1;
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return *why = "must not contain a NUL character", -1;
    if (c->maxlen >= 0 && utf8_len(s) > (size_t)c->maxlen)
        return *why = td_arena_printf(a, "must be at most %d characters", c->maxlen), -1;
    if (c->kind != RES_TEXT && c->kind != RES_OTHER && res_value_text_ok(c, s) < 0)
        return *why = c->kind == RES_UUID   ? "must be a UUID"
                      : c->kind == RES_DATE ? "must be a date YYYY-MM-DD"
                                            : "must be an RFC 3339 timestamp",
               -1;
    return *text = s, 0;
}

int res_value_json(const struct res_col *c, json_t *v, struct td_arena *a, const char **text,
                   const char **why)
{
    *text = NULL;
    if (json_is_null(v))
        return 0;
    if (!c->is_array)
        return scalar(c, v, a, text, why);
    if (!json_is_array(v))
        return *why = "must be an array", -1;
    struct res_col e = *c;
    e.is_array = 0;
    e.maxlen = -1;
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x)
    {
        const char *t;
        if (!json_is_null(x) && (json_is_array(x) || scalar(&e, x, a, &t, why) < 0))
            return *why = td_arena_printf(a, "items %s",
                                          json_is_array(x) ? "must not be arrays" : *why),
                   -1;
    }
    char *s = json_dumps(v, JSON_COMPACT);
    *text = td_arena_strdup(a, s);
    free(s);
    return 0;
}

size_t res_json_compact(char *s, size_t len)
{
    size_t w = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            s[w++] = c;
            if (c == '\\' && i + 1 < len)
                s[w++] = s[++i];
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
            s[w++] = c;
        } else if (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
            s[w++] = c;
        }
    }
    if (w < len)
        s[w] = '\0';
    return w;
}
