/*
 * mem.c - aborting allocators and the request arena (bump allocation in chained blocks).
 */
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void oom(size_t n)
{
    fprintf(stderr, "tenantd: out of memory allocating %zu bytes\n", n);
    abort();
}

void *td_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *td_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        oom(n * size);
    return p;
}

void *td_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *td_xstrdup(const char *s)
{
    return td_xstrndup(s, strlen(s));
}

char *td_xstrndup(const char *s, size_t n)
{
    char *p = td_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *td_xasprintf(const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = td_xmalloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

#define ARENA_BLOCK 4096

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

struct arena_cleanup {
    struct arena_cleanup *next;
    void (*fn)(void *);
    void *p;
};

struct td_arena {
    struct arena_block *blocks;
    struct arena_cleanup *cleanups;
};

struct td_arena *td_arena_new(void)
{
    return td_xcalloc(1, sizeof(struct td_arena));
}

void td_arena_free(struct td_arena *a)
{
    if (!a)
        return;
    for (struct arena_cleanup *c = a->cleanups; c; c = c->next)
        c->fn(c->p);
    struct arena_block *b = a->blocks;
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    free(a);
}

void *td_arena_alloc(struct td_arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    struct arena_block *b = a->blocks;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        b = td_xmalloc(sizeof(*b) + cap);
        b->used = 0;
        b->cap = cap;
        b->next = a->blocks;
        a->blocks = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

size_t td_arena_bytes(const struct td_arena *a)
{
    size_t n = 0;
    for (const struct arena_block *b = a->blocks; b; b = b->next)
        n += sizeof(*b) + b->cap + sizeof(size_t);
    return n;
}

char *td_arena_strdup(struct td_arena *a, const char *s)
{
    return td_arena_strndup(a, s, strlen(s));
}

char *td_arena_strndup(struct td_arena *a, const char *s, size_t n)
{
    char *p = td_arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *td_arena_printf(struct td_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = td_arena_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void td_arena_defer(struct td_arena *a, void (*fn)(void *), void *p)
{
    struct arena_cleanup *c = td_arena_alloc(a, sizeof(*c));
    c->fn = fn;
    c->p = p;
    c->next = a->cleanups;
    a->cleanups = c;
}
