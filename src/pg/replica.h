/*
 * replica.h - a streaming replica of the embedded cluster in <data_dir>/pg-replica, made
 * once with `pg_basebackup -R` and started with pg_ctl (TENANTD_REPLICA=1).
 */
#ifndef TD_PG_REPLICA_H
#define TD_PG_REPLICA_H

#include "core/err.h"

struct pgc_cluster;
struct pgc_replica;

/* Make the replica beside primary's data directory if it has none, start it (or reuse one
 * running there) and wait until it accepts connections. Returns 0 or TD_EUNAVAILABLE
 * (logged). Blocks (a base backup of the whole cluster on first use). */
int pgc_replica_start(const struct pgc_cluster *primary, struct pgc_replica **out) TD_MUSTCHECK;
/* Superuser conninfo of dbname on the replica, like pgc_cluster_conninfo(). Owned by r. */
const char *pgc_replica_conninfo(const struct pgc_replica *r);
/* Stop the replica if this process started it, then free r. NULL ok. */
void pgc_replica_stop(struct pgc_replica *r);

#endif
