/*
 * check.h - the value rules of SPEC §3 and §5 on plain strings: lengths in code points,
 * whitespace-only text counts as empty, emails, passwords, slugs. Used by the HTTP
 * handlers (through api/validate.h) and by the services the CLI calls. All pure.
 */
#ifndef TD_TENANT_CHECK_H
#define TD_TENANT_CHECK_H

#include <stddef.h>

/* Unicode code points of a valid UTF-8 string. */
size_t tnt_text_len(const char *s);
/* 1 when s holds only whitespace (or nothing). */
int tnt_text_blank(const char *s);
/* 1 when s is non-empty, not only whitespace and at most max code points. */
int tnt_text_ok(const char *s, size_t max);
/* 1 when email has one '@' with text on both sides, no whitespace, <= 254 code points. */
int tnt_email_ok(const char *email);
/* 1 when pw has 8 to 128 code points. */
int tnt_password_ok(const char *pw);
/* 1 when slug matches ^[a-z][a-z0-9-]{1,38}[a-z0-9]$ and is not UUID-shaped (it would
 * read as an id wherever "{id or slug}" is accepted). */
int tnt_slug_ok(const char *slug);
/* 1 when s is one of the NULL-terminated set. */
int tnt_one_of(const char *s, const char *const *set);

/* The sets the catalog accepts. */
extern const char *const tnt_plan_names[];      /* free starter pro enterprise */
extern const char *const tnt_isolation_names[]; /* pool schema database */
extern const char *const tnt_status_names[];    /* active suspended */

#endif
