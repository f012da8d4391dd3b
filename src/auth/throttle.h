/*
 * throttle.h - login throttling (SPEC §3): failed logins counted per email of a tenant and
 * per client address in a fixed-size in-memory table, so that password guessing stops
 * after a few attempts without a database write per failure. Per process: several
 * instances behind a load balancer each count their own share.
 */
#ifndef TD_AUTH_THROTTLE_H
#define TD_AUTH_THROTTLE_H

#include <stddef.h>
#include <time.h>

#define AUTH_THROTTLE_WINDOW_S 300 /* a window opens at a key's first failure */
#define AUTH_THROTTLE_PER_EMAIL 10 /* default: failures of one email of a tenant per window */
#define AUTH_THROTTLE_PER_ADDR 100 /* default: failures from one client address per window */
#define AUTH_THROTTLE_SLOTS 65536  /* keys remembered; the oldest window of a set goes first */

struct auth_throttle;

/* A table of slots entries (rounded up to a whole set; 0: AUTH_THROTTLE_SLOTS) that blocks an
 * email after per_email failures and an address after per_addr (0: the defaults above). Its
 * memory is allocated here once and never grows. */
struct auth_throttle *auth_throttle_new(size_t slots, unsigned per_email, unsigned per_addr);
void auth_throttle_free(struct auth_throttle *t);

/*
 * Whether a login for email (compared ignoring ASCII case) of tenant_id from client address
 * addr may be tried at now: 0 yes, else the seconds until its window passes (> 0), for
 * Retry-After. Looks only; costs no hash of the password. Thread-safe.
 */
long auth_throttle_check(struct auth_throttle *t, const char *tenant_id, const char *email,
                         const char *addr, time_t now);
/* Record a failed login (wrong email or password) for both keys. Thread-safe. */
void auth_throttle_failed(struct auth_throttle *t, const char *tenant_id, const char *email,
                          const char *addr, time_t now);
/* A successful login forgets the email's failures (not the address's). Thread-safe. */
void auth_throttle_passed(struct auth_throttle *t, const char *tenant_id, const char *email,
                          time_t now);

#endif
