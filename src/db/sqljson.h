/*
 * sqljson.h - SQL fragments that make PostgreSQL write JSON in the API's one style:
 * compact (row_to_json; json_build_object would write "a" : 1) and every timestamp as
 * "YYYY-MM-DDTHH:MM:SS.ffffffZ" (PostgreSQL's own JSON text drops trailing zeros and
 * writes +00:00). Plain string macros: they are pasted into statement texts at compile time.
 */
#ifndef TD_DB_SQLJSON_H
#define TD_DB_SQLJSON_H

/* A timestamptz expression as the API's timestamp text (NULL stays NULL). The colons of
 * the format are written \x3A: statements captured from the server log are replayed by
 * pgbench (bench/), which would take :MI and :SS for its own variables. */
#define DB_SQL_TS(x)                                                                               \
    "to_char((" x ") AT TIME ZONE 'UTC', E'YYYY-MM-DD\"T\"HH24\\x3AMI\\x3ASS.US\"Z\"')"

/* One compact JSON object from a select list ("a.id, a.name AS name, ..."): each column a
 * key of its name, in order. The list may name the columns of the enclosing query. */
#define DB_SQL_OBJECT(cols) "(SELECT row_to_json(j_) FROM (SELECT " cols ") j_)"

#endif
