/*
 * replica.h - which reads may go to a server's streaming replica (read-your-writes).
 *
 * A poller thread samples, every REPLICA_POLL_MS, each replica's replay position
 * (pg_last_wal_replay_lsn()) and its primary's insert position. A read of key (a tenant on
 * a server) may use the replica only when the replica answered the last poll, its lag is
 * within the bound, and its replay position has passed the key's last commit: the LSN
 * remembered after each write, or, for a key never seen (written by another process or
 * through an admin connection), the primary's position sampled after it was first seen.
 * Nothing here ever waits for a replica: a read that may not use it goes to the primary.
 * Thread-safe.
 */
#ifndef TD_DB_REPLICA_H
#define TD_DB_REPLICA_H

#include <libpq-fe.h>

struct db_replicas;

/* Per server: its superuser conninfo and its replica's (NULL: none). max_lag: bytes of
 * WAL a replica may be behind its primary and still serve reads. Starts the poller when
 * any server has a replica; returns NULL when none has. */
struct db_replicas *db_replicas_new(int nservers, const char *const *primary,
                                    const char *const *replica, long long max_lag);
void db_replicas_free(struct db_replicas *r);

/* 1 when server has a replica (its writes then remember their commit LSN). */
int db_replicas_has(const struct db_replicas *r, int server);
/* 1 when key's read may run on server's replica now. key NULL: no writes to follow (the
 * replica need only be up and within the lag bound). Counts the decision. */
int db_replicas_pick(struct db_replicas *r, int server, const char *key);
/* A read picked for the replica failed there (it is then run on the primary): the replica
 * is skipped until the poller reaches it again. */
void db_replicas_failed(struct db_replicas *r, int server);
/* After a committed write of key: lsn is the primary's WAL position after the commit, or
 * 0 (not known): the primary's position polled from now on stands for it. */
void db_replicas_wrote(struct db_replicas *r, int server, const char *key, unsigned long long lsn);
/* pg_current_wal_insert_lsn() on pg; 0 on failure. */
unsigned long long db_lsn_query(PGconn *pg);

struct db_replica_stats {
    int configured, up;
    long long lag_bytes;
    double replay_age_s; /* seconds since the replica last replayed a transaction; -1: none */
    long long reads_replica, reads_primary, fallbacks;
};
void db_replicas_stats(struct db_replicas *r, int server, struct db_replica_stats *st);

/* "X/Y" as PostgreSQL prints an LSN; 0 when s is not one. */
unsigned long long db_lsn_parse(const char *s);

#endif
