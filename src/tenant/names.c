/*
 * names.c - storage names derived from tenant ids, checked and quoted (see names.h).
 */
#include "tenant/names.h"

#include "core/log.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

int tnt_name_of(const char *tenant_id, enum tnt_name_kind kind, char *out)
{
    char hex[33];
    int h = 0;
    out[0] = '\0';
    for (int i = 0; tenant_id[i]; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (i >= 36 || (dash ? tenant_id[i] != '-' : !isxdigit((unsigned char)tenant_id[i])))
            return TD_EVALIDATION;
        if (!dash)
            hex[h++] = (char)tolower((unsigned char)tenant_id[i]);
    }
    if (h != 32)
        return TD_EVALIDATION;
    hex[h] = '\0';
    snprintf(out, TNT_NAME_MAX, "%s%s", kind == TNT_NAME_DATABASE ? "td_" : "t_", hex);
    return 0;
}

int tnt_name_valid(const char *name)
{
    size_t pre = !strncmp(name, "t_", 2) ? 2 : !strncmp(name, "td_", 3) ? 3 : 0;
    if (!strcmp(name, "pool"))
        return 1;
    if (!pre || strlen(name) != pre + 32)
        return 0;
    return strspn(name + pre, "0123456789abcdef") == 32;
}

char *tnt_name_quote(PGconn *pg, const char *name)
{
    if (!name || !tnt_name_valid(name)) {
        td_log_error("refused storage name \"%.40s\": not one tenantd makes", name ? name : "");
        return NULL;
    }
    char *q = PQescapeIdentifier(pg, name, strlen(name));
    if (!q)
        td_log_error("could not quote storage name %s: %.*s", name,
                     (int)strcspn(PQerrorMessage(pg), "\n"), PQerrorMessage(pg));
    return q;
}
