/*
 * mem.h - allocation that aborts on failure (as h2o and Redis do), so callers never
 * NULL-check, and the per-request arena.
 */
#ifndef TD_CORE_MEM_H
#define TD_CORE_MEM_H

#include <stdarg.h>
#include <stddef.h>

void *td_xmalloc(size_t n);
void *td_xcalloc(size_t n, size_t size);
void *td_xrealloc(void *p, size_t n);
char *td_xstrdup(const char *s);
char *td_xstrndup(const char *s, size_t n);
/* printf into a fresh heap string; caller frees. */
char *td_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * An arena owns request-scoped memory and foreign resources tied to it with a cleanup
 * callback. Nothing is freed piecemeal: td_arena_free() runs the callbacks (last
 * registered first) and releases every block. Not thread-safe: one owner at a time.
 */
struct td_arena;

struct td_arena *td_arena_new(void);
void td_arena_free(struct td_arena *a);
void *td_arena_alloc(struct td_arena *a, size_t n);
char *td_arena_strdup(struct td_arena *a, const char *s);
char *td_arena_strndup(struct td_arena *a, const char *s, size_t n);
char *td_arena_printf(struct td_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Memory the arena's blocks hold, allocator headers included (a long-lived arena's size). */
size_t td_arena_bytes(const struct td_arena *a);
/* Run fn(p) when the arena is freed. */
void td_arena_defer(struct td_arena *a, void (*fn)(void *), void *p);

#endif
