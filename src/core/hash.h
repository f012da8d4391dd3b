/*
 * hash.h - FNV-1a over a NUL-terminated string, for in-memory hash tables whose keys
 * clients cannot choose freely (tenant ids and slugs, tenant keys of the HTTP gate).
 */
#ifndef TD_CORE_HASH_H
#define TD_CORE_HASH_H

static inline unsigned td_hash_str(const char *s)
{
    unsigned h = 2166136261u;
    for (const char *p = s; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h;
}

#endif
