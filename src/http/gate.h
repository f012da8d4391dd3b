/*
 * gate.h - per-tenant admission of requests to the event loops, work-conserving: a tenant is
 * held to its share only while another tenant has requests in the gate; alone it may run as
 * many as it has. Requests held back are parked and handed a slot tenant by tenant in
 * round-robin order, so a flooding tenant's queue delays another tenant by one turn at most.
 *
 * A tenant whose last request left stays in the gate for `linger_us` more: a client that
 * sends its next request as soon as it has an answer is still waiting in between, and the
 * tenant that holds the loops must not grow back into them in that gap.
 *
 * `alone` keeps room for the next tenant where a stuck request holds its loop (a loop busy
 * in a handler cannot even read another tenant's request).
 *
 * A pure data structure: no threads, no libmicrohttpd, and the time only as the caller passes
 * it (now_us, any monotonic microseconds). It is not thread-safe; the caller serializes
 * every call (server.c holds one mutex) and resumes what it is told to.
 */
#ifndef TD_HTTP_GATE_H
#define TD_HTTP_GATE_H

struct http_gate;
struct http_gate_tenant;

/* One request's place in the gate, embedded in the caller's request and zeroed before
 * http_gate_enter(). The gate owns the fields while the request is in it. */
struct http_gate_entry {
    struct http_gate_entry *next;    /* its tenant's parked queue, then the resume list */
    struct http_gate_tenant *tenant; /* NULL: not in the gate */
    int admitted;                    /* holds a running slot */
};

/*
 * A gate where one tenant runs at most `share` requests at once while another tenant has
 * requests in it (running or parked), at most `alone` (0: no limit; at least share) while
 * it is the only one, and every tenant together at most `slots` (0: no total limit); a
 * tenant counts as in the gate until linger_us after its last request left.
 * share <= 0: no gate, every request runs. Allocation failure aborts.
 */
struct http_gate *http_gate_new(int share, int alone, int slots, long long linger_us);
/* Frees the gate and its tenant records; entries still in it are forgotten, not resumed. */
void http_gate_free(struct http_gate *g);

/*
 * Admit e, a request of tenant key (at most 79 bytes are told apart), or park it.
 * Returns 0 when e may run now (e->admitted is set; it holds the slot until
 * http_gate_leave), 1 when parked: the caller suspends the request until a later leave or
 * drop names e in its resume list.
 */
int http_gate_enter(struct http_gate *g, struct http_gate_entry *e, const char *key,
                    long long now_us);

/*
 * e, admitted, is done with its slot. Returns the entries admitted in its place (their
 * tenants' turns, linked through next, NULL-terminated): the caller resumes each.
 */
struct http_gate_entry *http_gate_leave(struct http_gate *g, struct http_gate_entry *e,
                                        long long now_us);

/*
 * e ends wherever it is (its client went away while it was parked or running): it is taken
 * out of the gate. Returns the entries to resume, as http_gate_leave. No-op for an entry
 * not in the gate.
 */
struct http_gate_entry *http_gate_drop(struct http_gate *g, struct http_gate_entry *e,
                                       long long now_us);

/* Tenants in the gate: with requests running or parked, or lingering. */
int http_gate_tenants(const struct http_gate *g);

#endif
