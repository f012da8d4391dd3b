/*
 * password.h - argon2id password hashes (libsodium), PHC string format.
 */
#ifndef TD_AUTH_PASSWORD_H
#define TD_AUTH_PASSWORD_H

#include "core/err.h"

#include <sodium.h>

#define AUTH_HASH_MAX crypto_pwhash_STRBYTES

/* Hash password into out (AUTH_HASH_MAX bytes). Returns 0 or TD_EINTERNAL. Thread-safe. */
int auth_password_hash(const char *password, char out[AUTH_HASH_MAX]) TD_MUSTCHECK;
/* 1 when password matches hash, else 0. With hash NULL it spends the same time and
 * returns 0, so an unknown email costs what a wrong password costs. */
int auth_password_verify(const char *hash, const char *password);
/* Constant-time comparison of two strings (e.g. the operator token). */
int auth_secret_equal(const char *a, const char *b);

#endif
