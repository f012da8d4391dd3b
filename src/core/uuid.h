/*
 * uuid.h - UUID text (8-4-4-4-12 hex) to 16 bytes and back, for in-memory tables keyed by
 * tenant or user ids: 16 bytes instead of a 37-byte string a key.
 */
#ifndef TD_CORE_UUID_H
#define TD_CORE_UUID_H

#include <stddef.h>

/* The UUID text s (either case, as PostgreSQL compares uuids) as 16 bytes; -1 when s is
 * anything else. */
static inline int td_uuid_parse(const char *s, unsigned char out[16])
{
    int k = 0;
    for (int i = 0; i < 36; i++) {
        char ch = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (ch != '-')
                return -1;
            continue;
        }
        int v = ch >= '0' && ch <= '9'   ? ch - '0'
                : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                         : -1;
        if (v < 0)
            return -1;
        out[k / 2] = (unsigned char)(k % 2 ? out[k / 2] | v : v << 4);
        k++;
    }
    return s[36] == '\0' ? 0 : -1;
}

/* The 16 bytes in as UUID text, lowercase (PostgreSQL's output form), into out[37]. */
static inline void td_uuid_format(const unsigned char in[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex[in[i] >> 4];
        *p++ = hex[in[i] & 15];
    }
    *p = '\0';
}

#endif
