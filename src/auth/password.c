/*
 * password.c - argon2id hashing with libsodium.
 *
 * Parameters follow the OWASP recommendation for argon2id (t=2, m=19 MiB) rather
 * than libsodium's "interactive" 64 MiB, so 32 concurrent logins stay under 1 GiB.
 */
#include "auth/password.h"

#include <pthread.h>
#include <string.h>

#define PW_OPSLIMIT 2
#define PW_MEMLIMIT (19u * 1024 * 1024)

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[AUTH_HASH_MAX];

static void make_dummy(void)
{
    if (crypto_pwhash_str(dummy_hash, "tenantd-dummy-password", 22, PW_OPSLIMIT, PW_MEMLIMIT))
        dummy_hash[0] = '\0';
}

int auth_password_hash(const char *password, char out[AUTH_HASH_MAX])
{
    if (crypto_pwhash_str(out, password, strlen(password), PW_OPSLIMIT, PW_MEMLIMIT) != 0)
        return TD_EINTERNAL;
    return 0;
}

int auth_password_verify(const char *hash, const char *password)
{
    if (!hash) {
        pthread_once(&dummy_once, make_dummy);
        if (dummy_hash[0] && crypto_pwhash_str_verify(dummy_hash, password, strlen(password)))
            return 0;
        return 0;
    }
    return crypto_pwhash_str_verify(hash, password, strlen(password)) == 0;
}

int auth_secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    /* compare equal-length buffers in constant time; the length itself is not secret */
    if (la != lb)
        return 0;
    return sodium_memcmp(a, b, la) == 0;
}
