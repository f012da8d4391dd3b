/*
 * list.h - intrusive doubly-linked list (oldest at head, newest at tail): O(1) append,
 * unlink and pop for the LRU and idle lists. Embed a struct td_link in the element and
 * get back to it with TD_CONTAINER_OF.
 */
#ifndef TD_CORE_LIST_H
#define TD_CORE_LIST_H

#include <stddef.h>

struct td_link {
    struct td_link *prev, *next;
    int linked;
};

struct td_list {
    struct td_link *head, *tail;
};

#define TD_CONTAINER_OF(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void td_list_unlink(struct td_list *l, struct td_link *n)
{
    if (!n->linked)
        return;
    *(n->prev ? &n->prev->next : &l->head) = n->next;
    *(n->next ? &n->next->prev : &l->tail) = n->prev;
    n->prev = n->next = NULL;
    n->linked = 0;
}

/* Append n (newest); moves it there when it is linked already. */
static inline void td_list_append(struct td_list *l, struct td_link *n)
{
    td_list_unlink(l, n);
    n->prev = l->tail;
    n->next = NULL;
    *(l->tail ? &l->tail->next : &l->head) = n;
    l->tail = n;
    n->linked = 1;
}

#endif
