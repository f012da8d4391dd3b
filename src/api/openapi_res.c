/*
 * openapi_res.c - the served tenant tables in /openapi.json (SPEC §7): each resource's
 * paths and a JSON Schema of its row from the column types (required = NOT NULL without a
 * default), taken from the current table description.
 */
#include "api/openapi.h"

#include "resource/resource.h"

#include <stdio.h>
#include <string.h>

static json_t *scalar_schema(const struct res_col *c)
{
    switch (c->kind) {
    case RES_INT:
        return json_pack("{s:s, s:s}", "type", "integer", "format",
                         c->int_bits == 64 ? "int64" : "int32");
    case RES_NUMERIC:
        return json_pack("{s:[s, s], s:s}", "type", "number", "string", "description",
                         "a number, or a string holding one to keep every digit");
    case RES_FLOAT:
        return json_pack("{s:s}", "type", "number");
    case RES_BOOL:
        return json_pack("{s:s}", "type", "boolean");
    case RES_UUID:
        return json_pack("{s:s, s:s}", "type", "string", "format", "uuid");
    case RES_DATE:
        return json_pack("{s:s, s:s}", "type", "string", "format", "date");
    case RES_TSTZ:
        return json_pack("{s:s, s:s}", "type", "string", "format", "date-time");
    case RES_JSON:
        return json_object(); /* any JSON */
    default: {
        json_t *s = json_pack("{s:s}", "type", "string");
        if (c->maxlen >= 0)
            json_object_set_new(s, "maxLength", json_integer(c->maxlen));
        return s;
    }
    }
}

static json_t *col_schema(const struct res_col *c)
{
    json_t *s = scalar_schema(c);
    if (c->is_array)
        s = json_pack("{s:s, s:o}", "type", "array", "items", s);
    if (!c->notnull && c->kind != RES_JSON) {
        json_t *t = json_object_get(s, "type");
        json_t *types = json_is_array(t) ? json_copy(t) : json_pack("[O]", t);
        json_array_append_new(types, json_string("null"));
        json_object_set_new(s, "type", types);
    }
    if (c->readonly)
        json_object_set_new(s, "readOnly", json_true());
    json_object_set_new(s, "x-sql-type", json_string(c->sqltype));
    return s;
}

static json_t *row_schema(const struct res_table *t)
{
    json_t *props = json_object(), *req = json_array();
    for (int i = 0; i < t->ncols; i++) {
        const struct res_col *c = &t->cols[i];
        if (c->is_private)
            continue;
        json_object_set_new(props, c->name, col_schema(c));
        if (c->notnull && !c->has_default)
            json_array_append_new(req, json_string(c->name));
    }
    return json_pack("{s:s, s:s, s:o, s:o, s:b}", "type", "object", "description", t->name,
                     "properties", props, "required", req, "additionalProperties", 0);
}

static json_t *query_param(const char *name, const char *desc)
{
    json_t *schema = !strcmp(name, "limit") ? json_pack("{s:s, s:i, s:i, s:i}", "type", "integer",
                                                        "minimum", 1, "maximum", 100, "default", 20)
                                            : json_pack("{s:s}", "type", "string");
    return json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", name, "in", "query", "required", 0,
                     "description", desc, "schema", schema);
}

static json_t *op(const struct res_table *t, const char *summary, int status, json_t *response,
                  json_t *request, int item, int list)
{
    json_t *params = json_array();
    json_array_append_new(params, json_pack("{s:s}", "$ref", "#/components/parameters/TenantId"));
    if (item)
        json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:{s:s, s:s}}", "name", "id", "in",
                                                "path", "required", 1, "schema", "type", "string",
                                                "format", "uuid"));
    if (list) {
        json_array_append_new(params, query_param("limit", "page size"));
        json_array_append_new(params, query_param("cursor", "next_cursor of the previous page"));
        json_array_append_new(params, query_param("order", "col.asc|col.desc[,...]"));
    }
    if (list || item) {
        json_array_append_new(params, query_param("select", "col,... (id always)"));
        json_array_append_new(params, query_param("embed", "related rows, both directions"));
    }
    char key[8];
    snprintf(key, sizeof(key), "%d", status);
    json_t *ok = json_pack("{s:s}", "description", status == 204 ? "done, no body" : "success");
    if (response)
        json_object_set_new(ok, "content",
                            json_pack("{s:{s:o}}", "application/json", "schema", response));
    char opid[192];
    snprintf(opid, sizeof(opid), "%s_%s", summary, t->name);
    for (char *c = opid; *c; c++)
        *c = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ? *c
                                                                                              : '_';
    json_t *o = json_pack(
        "{s:s, s:s, s:[s], s:o, s:{s:o, s:{s:s}}, s:[{s:[]}], s:b}", "operationId", opid, "summary",
        summary, "tags", t->path, "parameters", params, "responses", key, ok, "default", "$ref",
        "#/components/responses/Problem", "security", "userToken", "x-tenant-route", 1);
    if (request)
        json_object_set_new(o, "requestBody",
                            json_pack("{s:b, s:{s:{s:o}}}", "required", 1, "content",
                                      "application/json", "schema", request));
    return o;
}

static json_t *ref_row(const char *name)
{
    char ref[256];
    snprintf(ref, sizeof(ref), "#/components/schemas/%s", name);
    return json_pack("{s:s}", "$ref", ref);
}

static void add_table(json_t *paths, json_t *schemas, const struct res_table *t)
{
    char name[160], coll[140], item[160];
    snprintf(name, sizeof(name), "Row_%s", t->name);
    snprintf(coll, sizeof(coll), "/%s", t->path);
    snprintf(item, sizeof(item), "/%s/{id}", t->path);
    json_object_set_new(schemas, name, row_schema(t));
    json_t *page =
        json_pack("{s:s, s:{s:{s:s, s:o}, s:{s:[s, s]}}}", "type", "object", "properties", "data",
                  "type", "array", "items", ref_row(name), "next_cursor", "type", "string", "null");
    json_t *one_or_many =
        json_pack("{s:[o, {s:s, s:i, s:i, s:o}]}", "oneOf", ref_row(name), "type", "array",
                  "minItems", 1, "maxItems", 100, "items", ref_row(name));
    json_object_set_new(
        paths, coll,
        json_pack("{s:o, s:o}", "get",
                  op(t, "List rows (filters: ?col=[not.]op.value)", 200, page, NULL, 0, 1), "post",
                  op(t, "Create a row, or 1-100 rows all or none", 201, ref_row(name), one_or_many,
                     0, 0)));
    json_object_set_new(
        paths, item,
        json_pack("{s:o, s:o, s:o}", "get", op(t, "One row", 200, ref_row(name), NULL, 1, 0),
                  "patch", op(t, "Change the given keys", 200, ref_row(name), ref_row(name), 0, 0),
                  "delete", op(t, "Remove a row", 204, NULL, NULL, 0, 0)));
    /* patch and delete name the row too */
    json_t *pi = json_object_get(paths, item);
    const char *m;
    json_t *o;
    json_object_foreach(pi, m, o)
    {
        if (strcmp(m, "get") != 0)
            json_array_append_new(json_object_get(o, "parameters"),
                                  json_pack("{s:s, s:s, s:b, s:{s:s, s:s}}", "name", "id", "in",
                                            "path", "required", 1, "schema", "type", "string",
                                            "format", "uuid"));
    }
}

void api_openapi_resources(json_t *doc, const struct res_desc *d)
{
    json_t *paths = json_object_get(doc, "paths");
    json_t *components = json_object_get(doc, "components");
    json_t *schemas = json_object_get(components, "schemas");
    if (!json_is_object(components))
        json_object_set_new(doc, "components", components = json_object());
    if (!json_is_object(schemas))
        json_object_set_new(components, "schemas", schemas = json_object());
    json_t *responses = json_object_get(components, "responses");
    if (!json_is_object(responses))
        json_object_set_new(components, "responses", responses = json_object());
    if (!json_object_get(responses, "Problem"))
        json_object_set_new(responses, "Problem",
                            json_pack("{s:s, s:{s:{s:{s:s}}}}", "description", "a problem",
                                      "content", "application/problem+json", "schema", "$ref",
                                      "#/components/schemas/Problem"));
    for (int i = 0; d && i < d->ntables; i++)
        if (res_table_served(&d->tables[i]))
            add_table(paths, schemas, &d->tables[i]);
}
