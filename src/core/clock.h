/*
 * clock.h - the one monotonic clock: durations, timeouts and ages of cache entries.
 * Wall-clock time (timestamps shown to people) is time(2) / CLOCK_REALTIME, not this.
 */
#ifndef TD_CORE_CLOCK_H
#define TD_CORE_CLOCK_H

#include <time.h>

/* Microseconds on CLOCK_MONOTONIC. Thread-safe. */
static inline long long td_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Milliseconds on CLOCK_MONOTONIC. Thread-safe. */
static inline long long td_now_ms(void)
{
    return td_now_us() / 1000;
}

#endif
