/*
 * test_container.c - what can be checked of the container without a Docker engine: the
 * Dockerfile's package lists match `make deps` (build stage: what the build needs; runtime
 * stage: the shared libraries of those -dev packages, as dpkg says), it runs as a non-root
 * user with a HEALTHCHECK on /health, and compose.yaml parses and wires PostgreSQL, two
 * tenantd replicas, nginx (deploy/nginx.conf) and Prometheus (deploy/prometheus.yml,
 * scraping each replica's metrics address) together.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_PKGS 64

struct pkgs {
    char *name[MAX_PKGS];
    int n;
};

static char src_dir[512];

static int setup(void **state)
{
    const char *d = getenv("TD_SOURCE_DIR");
    (void)state;
    snprintf(src_dir, sizeof(src_dir), "%s", d && *d ? d : ".");
    return 0;
}

static char *slurp(const char *rel)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", src_dir, rel);
    FILE *f = fopen(path, "r");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return buf;
}

static void pkgs_add(struct pkgs *p, const char *name, size_t len)
{
    assert_true(p->n < MAX_PKGS);
    p->name[p->n++] = strndup(name, len);
}

static int pkgs_has(const struct pkgs *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->name[i], name))
            return 1;
    return 0;
}

static void pkgs_free(struct pkgs *p)
{
    for (int i = 0; i < p->n; i++)
        free(p->name[i]);
    p->n = 0;
}

/* Join backslash-continued lines in place. */
static void join_lines(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && r[1] == '\n') {
            *w++ = ' ';
            r++;
            continue;
        }
        *w++ = *r;
    }
    *w = '\0';
}

/* Words of s up to the end of the line or "&&", skipping options. */
static void words(const char *s, struct pkgs *out)
{
    while (*s && *s != '\n') {
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\n' || !*s || !strncmp(s, "&&", 2))
            return;
        size_t len = strcspn(s, " \t\n");
        if (s[0] != '-')
            pkgs_add(out, s, len);
        s += len;
    }
}

static void makefile_deps(struct pkgs *deps)
{
    char *mk = slurp("Makefile");
    join_lines(mk);
    char *line = strstr(mk, "\nDEPS :=");
    assert_non_null(line);
    words(line + strlen("\nDEPS :="), deps);
    assert_true(deps->n >= 8);
    free(mk);
}

struct stage {
    char from[128];
    struct pkgs apt;
    char *text; /* the stage's lines (joined) */
};

/* Split the Dockerfile into its stages and collect each stage's apt-get install list. */
static int dockerfile_stages(char *df, struct stage *st, int max)
{
    join_lines(df);
    int n = -1;
    char *save = NULL;
    for (char *l = strtok_r(df, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(l, "FROM ", 5)) {
            assert_true(++n < max);
            memset(&st[n], 0, sizeof(st[n]));
            sscanf(l + 5, "%127s", st[n].from);
            st[n].text = calloc(1, 16384);
            continue;
        }
        if (n < 0 || l[0] == '#')
            continue;
        assert_true(strlen(st[n].text) + strlen(l) + 2 < 16384);
        strcat(st[n].text, l);
        strcat(st[n].text, "\n");
        for (char *i = strstr(l, "apt-get install"); i; i = strstr(i + 1, "apt-get install"))
            words(i + strlen("apt-get install"), &st[n].apt);
    }
    return n + 1;
}

/* The package a -dev package stands for at run time: its first dependency that is not
 * itself a -dev package (libpq-dev -> libpq5), as the installed dpkg database says. */
static int runtime_of(const char *dev, char *out, size_t size)
{
    char cmd[256], buf[1024] = "";
    snprintf(cmd, sizeof(cmd), "dpkg-query -W -f='${Depends}' %s 2>/dev/null", dev);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, p);
    buf[n] = '\0';
    if (pclose(p) != 0 || n == 0)
        return -1;
    char *save = NULL;
    for (char *d = strtok_r(buf, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
        while (*d == ' ')
            d++;
        size_t len = strcspn(d, " (|:");
        if (len > 4 && strncmp(d + len - 4, "-dev", 4) != 0 && !strncmp(d, "lib", 3)) {
            snprintf(out, size, "%.*s", (int)len, d);
            return 0;
        }
    }
    return -1;
}

/* Packages only the test binaries link (tests/CMakeLists.txt), never the server. */
static int test_only(const char *p)
{
    return !strcmp(p, "libcmocka-dev") || !strcmp(p, "libcurl4-openssl-dev");
}

static void test_dockerfile_packages_match_make_deps(void **state)
{
    struct pkgs deps = {0};
    struct stage st[4];
    (void)state;
    makefile_deps(&deps);
    char *df = slurp("Dockerfile");
    int ns = dockerfile_stages(df, st, 4);
    assert_int_equal(ns, 2);
    struct stage *build = &st[0], *run = &st[1];
    assert_true(!strncmp(build->from, "debian:bookworm", 15));
    assert_true(!strncmp(run->from, "debian:bookworm", 15));

    /* build stage: the compilers and every library -dev package of DEPS (the sanitizer
     * runtime aside), nothing DEPS does not have */
    for (int i = 0; i < build->apt.n; i++)
        if (!pkgs_has(&deps, build->apt.name[i]))
            fail_msg("Dockerfile build stage installs %s, which make deps does not",
                     build->apt.name[i]);
    for (int i = 0; i < deps.n; i++) {
        const char *p = deps.name[i];
        size_t len = strlen(p);
        int needed = !strcmp(p, "build-essential") || !strcmp(p, "cmake") ||
                     !strcmp(p, "pkg-config") ||
                     (len > 4 && !strcmp(p + len - 4, "-dev") && strncmp(p, "libclang", 8) != 0);
        if (needed && !pkgs_has(&build->apt, p))
            fail_msg("make deps has %s but the Dockerfile build stage does not install it", p);
    }

    /* runtime stage: the shared library of each -dev package the server links, the
     * PostgreSQL server packages of DEPS (embedded cluster), and curl for HEALTHCHECK */
    struct pkgs want = {0};
    for (int i = 0; i < build->apt.n; i++) {
        const char *p = build->apt.name[i];
        size_t len = strlen(p);
        if (len < 4 || strcmp(p + len - 4, "-dev") != 0 || test_only(p))
            continue;
        char lib[64];
        if (runtime_of(p, lib, sizeof(lib)) < 0)
            fail_msg("dpkg does not know %s: run make deps first", p);
        pkgs_add(&want, lib, strlen(lib));
    }
    for (int i = 0; i < deps.n; i++)
        if (!strncmp(deps.name[i], "postgresql-", 11))
            pkgs_add(&want, deps.name[i], strlen(deps.name[i]));
    pkgs_add(&want, "curl", 4);
    pkgs_add(&want, "ca-certificates", 15);
    assert_true(want.n >= 8);
    for (int i = 0; i < want.n; i++)
        if (!pkgs_has(&run->apt, want.name[i]))
            fail_msg("Dockerfile runtime stage lacks %s", want.name[i]);
    for (int i = 0; i < run->apt.n; i++)
        if (!pkgs_has(&want, run->apt.name[i]))
            fail_msg("Dockerfile runtime stage installs %s, which nothing needs", run->apt.name[i]);
    pkgs_free(&want);
    pkgs_free(&deps);
    for (int i = 0; i < ns; i++) {
        pkgs_free(&st[i].apt);
        free(st[i].text);
    }
    free(df);
}

static void test_dockerfile_runtime_stage(void **state)
{
    struct stage st[4];
    (void)state;
    char *df = slurp("Dockerfile");
    int ns = dockerfile_stages(df, st, 4);
    assert_int_equal(ns, 2);
    const char *t = st[1].text;
    /* a non-root user, set before the entry point */
    const char *user = strstr(t, "\nUSER ");
    if (!user && !strncmp(t, "USER ", 5))
        user = t - 1;
    assert_non_null(user);
    char who[64];
    assert_int_equal(sscanf(user + 6, "%63s", who), 1);
    assert_string_not_equal(who, "root");
    assert_string_not_equal(who, "0");
    assert_true(strstr(t, "useradd") != NULL);
    /* HEALTHCHECK on /health, with the curl the stage installs */
    const char *hc = strstr(t, "HEALTHCHECK");
    assert_non_null(hc);
    assert_non_null(strstr(hc, "curl"));
    assert_non_null(strstr(hc, "/health"));
    /* the binary and the migrations come from the build stage; the server finds them */
    assert_non_null(strstr(t, "COPY --from=build /src/build/tenantd"));
    assert_non_null(strstr(t, "/usr/share/tenantd/migrations"));
    assert_non_null(strstr(t, "TENANTD_MIGRATIONS_DIR=/usr/share/tenantd/migrations"));
    assert_non_null(strstr(t, "TENANTD_LISTEN=0.0.0.0:8080"));
    /* every COPY of the build stage names something that exists in the repository */
    char *save = NULL, *copy = strdup(st[0].text);
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        char what[256], path[1024];
        struct stat sb;
        if (sscanf(l, "COPY %255s", what) != 1 || what[0] == '-')
            continue;
        snprintf(path, sizeof(path), "%s/%s", src_dir, what);
        if (stat(path, &sb) != 0)
            fail_msg("Dockerfile copies %s, which does not exist", what);
    }
    free(copy);
    for (int i = 0; i < ns; i++) {
        pkgs_free(&st[i].apt);
        free(st[i].text);
    }
    free(df);
}

/* compose.yaml with its comment lines removed: JSON, hence YAML. */
static json_t *compose(void)
{
    char *text = slurp("compose.yaml");
    assert_null(strchr(text, '\t')); /* YAML forbids tabs for indentation */
    char *w = text;
    char *save = NULL;
    char *copy = strdup(text);
    for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        const char *s = l + strspn(l, " ");
        if (*s == '#')
            continue;
        size_t n = strlen(l);
        memcpy(w, l, n);
        w += n;
        *w++ = '\n';
    }
    *w = '\0';
    json_error_t err;
    json_t *doc = json_loads(text, 0, &err);
    if (!doc)
        fail_msg("compose.yaml does not parse: line %d: %s", err.line, err.text);
    free(copy);
    free(text);
    return doc;
}

static const char *env_of(json_t *svc, const char *name)
{
    return json_string_value(json_object_get(json_object_get(svc, "environment"), name));
}

static void test_compose_file(void **state)
{
    (void)state;
    json_t *doc = compose();
    json_t *services = json_object_get(doc, "services");
    assert_true(json_is_object(services));
    json_t *pg = json_object_get(services, "postgres");
    assert_non_null(pg);
    assert_true(!strncmp(json_string_value(json_object_get(pg, "image")), "postgres:15", 11));
    char *nginx_conf = slurp("deploy/nginx.conf");
    char *prom_conf = slurp("deploy/prometheus.yml");

    const char *name;
    json_t *svc;
    int replicas = 0;
    const char *jwt = NULL, *admin = NULL;
    json_object_foreach(services, name, svc)
    {
        json_t *build = json_object_get(svc, "build");
        if (!build)
            continue;
        replicas++;
        assert_string_equal(json_string_value(json_object_get(build, "context")), ".");
        const char *url = env_of(svc, "TENANTD_DATABASE_URL");
        assert_non_null(url);
        assert_non_null(strstr(url, "@postgres:5432/"));
        /* all replicas share the secrets and the catalog */
        if (!jwt) {
            jwt = env_of(svc, "TENANTD_JWT_SECRET");
            admin = env_of(svc, "TENANTD_ADMIN_TOKEN");
        }
        assert_non_null(env_of(svc, "TENANTD_JWT_SECRET"));
        assert_string_equal(env_of(svc, "TENANTD_JWT_SECRET"), jwt);
        assert_string_equal(env_of(svc, "TENANTD_ADMIN_TOKEN"), admin);
        assert_non_null(strstr(env_of(svc, "TENANTD_LISTEN"), ":8080"));
        json_t *dep = json_object_get(json_object_get(svc, "depends_on"), "postgres");
        assert_string_equal(json_string_value(json_object_get(dep, "condition")),
                            "service_healthy");
        json_t *test = json_object_get(json_object_get(svc, "healthcheck"), "test");
        char *t = json_dumps(test, 0);
        assert_non_null(strstr(t, "/health"));
        free(t);
        /* nginx balances over this replica */
        char upstream[128];
        snprintf(upstream, sizeof(upstream), "server %s:8080", name);
        if (!strstr(nginx_conf, upstream))
            fail_msg("deploy/nginx.conf has no \"%s\"", upstream);
        /* /metrics needs a token on the API address: Prometheus scrapes the replica's
         * metrics address instead */
        const char *ml = env_of(svc, "TENANTD_METRICS_LISTEN");
        assert_non_null(ml);
        char target[128];
        snprintf(target, sizeof(target), "\"%s%s\"", name, strrchr(ml, ':'));
        if (!strstr(prom_conf, target))
            fail_msg("deploy/prometheus.yml does not scrape %s", target);
    }
    assert_int_equal(replicas, 2);

    json_t *ngx = json_object_get(services, "nginx");
    assert_non_null(ngx);
    int mounted = 0;
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(ngx, "volumes"), i, v)
    {
        if (!strncmp(json_string_value(v), "./deploy/nginx.conf:", 20))
            mounted = 1;
    }
    assert_true(mounted);
    assert_int_equal(json_object_size(json_object_get(ngx, "depends_on")), 2);
    assert_non_null(strstr(nginx_conf, "proxy_pass http://tenantd"));
    json_t *prom = json_object_get(services, "prometheus");
    assert_non_null(prom);
    mounted = 0;
    json_array_foreach(json_object_get(prom, "volumes"), i, v)
    {
        if (!strncmp(json_string_value(v), "./deploy/prometheus.yml:", 24))
            mounted = 1;
    }
    assert_true(mounted);
    free(prom_conf);
    free(nginx_conf);
    json_decref(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dockerfile_packages_match_make_deps),
        cmocka_unit_test(test_dockerfile_runtime_stage),
        cmocka_unit_test(test_compose_file),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
