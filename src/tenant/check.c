/*
 * check.c - value rules on plain strings (see check.h).
 */
#include "tenant/check.h"

#include "auth/jwt.h"

#include <ctype.h>
#include <string.h>

const char *const tnt_plan_names[] = {"free", "starter", "pro", "enterprise", NULL};
const char *const tnt_isolation_names[] = {"pool", "schema", "database", NULL};
const char *const tnt_status_names[] = {"active", "suspended", NULL};

size_t tnt_text_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

int tnt_text_blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            return 0;
    return 1;
}

int tnt_text_ok(const char *s, size_t max)
{
    return s && !tnt_text_blank(s) && tnt_text_len(s) <= max;
}

int tnt_email_ok(const char *email)
{
    const char *at = strchr(email, '@');
    return at && !strchr(at + 1, '@') && at != email && at[1] != '\0' &&
           tnt_text_len(email) <= 254 && !strpbrk(email, " \t\r\n");
}

int tnt_password_ok(const char *pw)
{
    size_t n = tnt_text_len(pw);
    return n >= 8 && n <= 128;
}

int tnt_slug_ok(const char *slug)
{
    size_t n = strlen(slug);
    if (n < 3 || n > 40 || !islower((unsigned char)slug[0]) || slug[n - 1] == '-')
        return 0;
    /* a UUID-shaped slug would read as a tenant id wherever "{id or slug}" is accepted */
    if (auth_is_uuid(slug))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!islower((unsigned char)slug[i]) && !isdigit((unsigned char)slug[i]) && slug[i] != '-')
            return 0;
    return 1;
}

int tnt_one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(s, *set))
            return 1;
    return 0;
}
