/*
 * test_files.c - migration files without a database: loading and ordering, bad names and
 * duplicate versions refused, the consolidated baseline, pending files and edited files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "migrate/files.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64];

static void put(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/tdunit-mig.XXXXXX");
    return mkdtemp(dir) && sodium_init() >= 0 ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[128];
    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void clear_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'/*", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_load_orders_by_version(void **state)
{
    struct mig_set s;
    (void)state;
    clear_dir();
    put("0010_ten.sql", "SELECT 10;\n");
    put("0002_two.sql", "SELECT 2; -- trailing comment");
    put("README.md", "not a migration");
    assert_int_equal(mig_load(dir, &s), 0);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.files[0].version, 2);
    assert_string_equal(s.files[0].name, "0002_two");
    assert_int_equal(s.files[1].version, 10);
    assert_int_equal(mig_latest(&s), 10);
    assert_int_equal(strlen(s.files[0].checksum), 64);
    assert_int_equal(mig_dir_latest(dir), 10);
    mig_set_cleanup(&s);
    assert_int_equal(s.n, 0);
    assert_null(s.baseline);
}

static void test_bad_name_and_duplicate_refused(void **state)
{
    struct mig_set s;
    (void)state;
    clear_dir();
    put("0001_a.sql", "SELECT 1;");
    put("1_b.sql", "SELECT 1;");
    assert_int_equal(mig_load(dir, &s), TD_EINTERNAL);
    assert_int_equal(s.n, 0);

    clear_dir();
    put("0003_a.sql", "SELECT 1;");
    put("0003_b.sql", "SELECT 2;");
    assert_int_equal(mig_load(dir, &s), TD_EINTERNAL);
    assert_int_equal(s.n, 0);

    assert_int_equal(mig_dir_latest("/nonexistent/tenantd"), TD_EINTERNAL);
}

/* Every file, a separator that survives a trailing "-- comment", the ledger and one
 * INSERT naming every version with its checksum. */
static void test_baseline(void **state)
{
    struct mig_set s;
    (void)state;
    clear_dir();
    put("0001_base.sql", "CREATE TABLE a (x int); -- no newline at the end");
    put("0002_more.sql", "CREATE TABLE b (y int);\n");
    assert_int_equal(mig_load(dir, &s), 0);
    assert_non_null(s.baseline);
    const char *a = strstr(s.baseline, "CREATE TABLE a");
    const char *b = strstr(s.baseline, "CREATE TABLE b");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(a < b);
    assert_non_null(strstr(s.baseline, "-- no newline at the end\n;"));
    assert_non_null(strstr(s.baseline, "CREATE TABLE IF NOT EXISTS tenantd_migrations"));
    char row[128];
    snprintf(row, sizeof(row), "(1, '0001_base', '%s')", s.files[0].checksum);
    assert_non_null(strstr(s.baseline, row));
    snprintf(row, sizeof(row), "(2, '0002_more', '%s')", s.files[1].checksum);
    assert_non_null(strstr(s.baseline, row));
    mig_set_cleanup(&s);
}

static void test_pending_and_edited(void **state)
{
    struct mig_set s;
    int pending[4], np = -1;
    char *err = NULL;
    int versions[1] = {1};
    char sums[1][65];
    struct mig_ledger l = {1, versions, sums, 1};
    (void)state;
    clear_dir();
    put("0001_base.sql", "SELECT 1;");
    put("0002_next.sql", "SELECT 2;");
    put("0003_last.sql", "SELECT 3;");
    assert_int_equal(mig_load(dir, &s), 0);

    memcpy(sums[0], s.files[0].checksum, 65);
    assert_int_equal(mig_pending(&s, &l, pending, &np, &err), 0);
    assert_int_equal(np, 2);
    assert_int_equal(pending[0], 1);
    assert_int_equal(pending[1], 2);

    struct mig_ledger empty = {0};
    assert_int_equal(mig_pending(&s, &empty, pending, &np, &err), 0);
    assert_int_equal(np, 3);

    /* the recorded checksum no longer matches the file: refused, naming it */
    sums[0][0] = sums[0][0] == 'a' ? 'b' : 'a';
    assert_int_equal(mig_pending(&s, &l, pending, &np, &err), TD_ECONFLICT);
    assert_non_null(err);
    assert_non_null(strstr(err, "0001_base.sql"));
    assert_non_null(strstr(err, "edited"));
    mig_set_cleanup(&s);
}

static void test_expected_version_follows_directory(void **state)
{
    char sub[96];
    (void)state;
    clear_dir();
    snprintf(sub, sizeof(sub), "%s/tenant", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    put("tenant/0004_x.sql", "SELECT 1;");
    struct mig_expected e;
    mig_expected_init(&e, dir);
    assert_int_equal(mig_expected_get(&e), 4);
    put("tenant/0005_y.sql", "SELECT 1;");
    /* re-read at most every 2 s: the old value until then, the new one after */
    assert_int_equal(mig_expected_get(&e), 4);
    sleep(3);
    assert_int_equal(mig_expected_get(&e), 5);
    mig_expected_cleanup(&e);
}

/* Each application reads its own directory: a second one in the same process does not get
 * the first one's answer (the getter once kept the first directory's version for all). */
static void test_expected_version_per_directory(void **state)
{
    char sub[96], other[96];
    (void)state;
    clear_dir();
    snprintf(sub, sizeof(sub), "%s/tenant", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    put("tenant/0004_x.sql", "SELECT 1;");
    snprintf(other, sizeof(other), "%s/other", dir);
    snprintf(sub, sizeof(sub), "%s/other/tenant", dir);
    assert_int_equal(mkdir(other, 0755), 0);
    assert_int_equal(mkdir(sub, 0755), 0);
    put("other/tenant/0009_z.sql", "SELECT 1;");
    struct mig_expected a, b;
    mig_expected_init(&a, dir);
    mig_expected_init(&b, other);
    assert_int_equal(mig_expected_get(&a), 4);
    assert_int_equal(mig_expected_get(&b), 9);
    mig_expected_cleanup(&a);
    mig_expected_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_orders_by_version),
        cmocka_unit_test(test_bad_name_and_duplicate_refused),
        cmocka_unit_test(test_baseline),
        cmocka_unit_test(test_pending_and_edited),
        cmocka_unit_test(test_expected_version_follows_directory),
        cmocka_unit_test(test_expected_version_per_directory),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
