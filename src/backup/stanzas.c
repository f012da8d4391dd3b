/*
 * stanzas.c - a pgBackRest stanza for every server given by URL: its operator points the
 * server's archive_command at it and takes its base backups into tenantd's repository
 * (docs/operations.md); tenantd restores a scratch copy of it from there.
 */
#include "backup/internal.h"

#include "core/log.h"
#include "core/mem.h"

#include <ctype.h>
#include <string.h>

/* pgBackRest names stanzas with letters, digits, - and _; the embedded one is taken. */
static int stanza_name_ok(const char *name)
{
    if (!name[0] || strlen(name) >= 64 || strcmp(name, BKP_STANZA) == 0)
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_')
            return 0;
    return 1;
}

/* A value that reaches pgbackrest.conf: one line, no character that would end it. */
static int conf_value_ok(const char *v)
{
    for (const char *p = v; *p; p++)
        if ((unsigned char)*p < 0x20)
            return 0;
    return 1;
}

/* Read where server keeps its files and how pgBackRest reaches it, and write its stanza.
 * Superuser (or pg_read_all_settings) is what tenantd's admin connection has. */
static int write_stanza(struct bkp *b, int server, FILE *f)
{
    struct bkp__server *sv = &b->servers[server];
    const char *name = db_server_name(b->db, server);
    PGconn *pg = NULL;
    PGresult *r = NULL;
    int rc = db_admin_connect(b->db, server, NULL, &pg);
    if (rc == 0)
        rc = db_admin_exec(pg, "reading where the server keeps its data",
                           "SELECT current_setting('data_directory'), current_setting('port'), "
                           "trim(split_part(current_setting('unix_socket_directories'), ',', 1)), "
                           "current_user, current_database()",
                           0, NULL, &r);
    if (rc == 0 && PQntuples(r) == 1) {
        for (int c = 0; c < 5; c++)
            if (!conf_value_ok(PQgetvalue(r, 0, c)))
                rc = TD_EVALIDATION;
    }
    if (rc == 0) {
        fprintf(f, "\n[%s]\npg1-path=%s\npg1-port=%s\npg1-user=%s\n", name, PQgetvalue(r, 0, 0),
                PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 3));
        if (PQgetvalue(r, 0, 2)[0])
            fprintf(f, "pg1-socket-path=%s\n", PQgetvalue(r, 0, 2));
        snprintf(sv->user, sizeof(sv->user), "%s", PQgetvalue(r, 0, 3));
        snprintf(sv->dbname, sizeof(sv->dbname), "%s", PQgetvalue(r, 0, 4));
        snprintf(sv->stanza, sizeof(sv->stanza), "%s", name);
    }
    PQclear(r);
    PQfinish(pg);
    return rc;
}

void bkp__url_stanzas(struct bkp *b, FILE *f)
{
    for (int i = 1; i < db_server_count(b->db) && i < BKP_MAX_SERVERS; i++) {
        const char *name = db_server_name(b->db, i);
        if (!stanza_name_ok(name))
            td_log_warn("backup: server %s: its name cannot be a pgBackRest stanza (letters, "
                        "digits, - and _, not \"" BKP_STANZA "\"); its tenants cannot be restored",
                        name);
        else if (write_stanza(b, i, f) < 0)
            td_log_warn("backup: server %s: could not read its data directory, port and socket "
                        "(tenantd's connection needs superuser or pg_read_all_settings); its "
                        "tenants cannot be restored",
                        name);
        else
            td_log_info("backup: server %s: stanza %s in %s (its archive_command pushes there)",
                        name, name, b->conf);
    }
}
