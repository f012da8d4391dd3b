/*
 * pipeline.h - the event loops' PostgreSQL pipelines (db/pipe.h): each loop opens its own
 * to every server's default database when it starts, watches their sockets in its epoll
 * set and flushes them once per iteration; a tenant's transactions go to one of its
 * loop's pipelines of the tenant's server, chosen by rendezvous hashing of the tenant id.
 */
#ifndef TD_API_PIPELINE_H
#define TD_API_PIPELINE_H

#include "db/pipe.h"

struct http_loop;
struct http_req;

/* http_server_opts.loop_start / loop_stop, on the loop's thread. A loop opens
 * TENANTD_PIPELINE pipelines per server; loop_stop ends what is in flight on them
 * (TD_EUNAVAILABLE: the requests get 503) and closes them. */
void api_pipeline_loop_start(struct http_loop *l);
void api_pipeline_loop_stop(struct http_loop *l);

/* The pipeline for a transaction of tenant_id on server from req's loop, or NULL (a worker
 * thread, a loop without pipelines, a server it has none to). Not necessarily connected:
 * db_pipe_submit says. */
struct db_pipe *api_pipeline_pick(struct http_req *req, int server, const char *tenant_id);

#endif
