/*
 * memory.c - how much memory a connection's PostgreSQL backend holds, for the pool's
 * recycling rule (pool.h). A backend keeps every relation, index and function it touched
 * in its caches and never gives that memory back, so a connection serving many schema
 * tenants grows; measuring it lets the pool close a connection only when it is big.
 */
#include "db/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The backend runs on this machine: a Unix socket, or the loopback address. */
static int backend_is_local(PGconn *pg)
{
    const char *host = PQhost(pg);
    return host && (host[0] == '/' || strcmp(host, "localhost") == 0 ||
                    strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0);
}

/* RssAnon of process pid (its private heap: caches are there, shared buffers are not),
 * in bytes, or -1. /proc/<pid>/status is readable by any user. */
static long long proc_rss_anon(int pid)
{
    char path[64], line[128];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "RssAnon:", 8) == 0) {
            kb = strtoll(line + 8, NULL, 10);
            break;
        }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* What the backend's memory contexts hold (PostgreSQL 14 and later; the runtime role may
 * read it when the server granted it, else -1). */
static long long contexts_total(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SELECT sum(total_bytes)::bigint FROM pg_backend_memory_contexts");
    long long bytes = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
        bytes = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return bytes;
}

long long db__backend_memory(PGconn *pg, int pooled)
{
    if (PQstatus(pg) != CONNECTION_OK || PQtransactionStatus(pg) != PQTRANS_IDLE)
        return -1;
    /* behind PgBouncer the backend changes every transaction and its pid is not ours */
    if (pooled)
        return -1;
    if (backend_is_local(pg)) {
        long long bytes = proc_rss_anon(PQbackendPID(pg));
        if (bytes >= 0)
            return bytes;
    }
    return contexts_total(pg);
}
