/*
 * internal.h - helpers shared inside src/db only: the hibernation of idle tenant
 * databases (hibernate.c) reaches the servers' pools of db.c through these.
 */
#ifndef TD_DB_INTERNAL_H
#define TD_DB_INTERNAL_H

#include "db/db.h"
#include "db/pool.h"

struct db_hibernator;

/* The pool of server (a valid index). */
struct db_pool *db__server_pool(struct db *db, int server);

/* Start the thread that hibernates tenant databases idle for cfg->hibernate_after_s;
 * NULL when that is 0. Stopped (and joined) by db__hibernator_stop, which accepts NULL. */
struct db_hibernator *db__hibernator_start(struct db *db, int after_s);
void db__hibernator_stop(struct db_hibernator *h);

/* Let database on server take connections again if it was hibernated. Returns 1 when it
 * was (and is now awake), 0 when it was not, or a negative TD_E* code. */
int db__wake(struct db *db, int server, const char *database);

#endif
