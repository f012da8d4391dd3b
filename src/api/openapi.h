/*
 * openapi.h - the OpenAPI 3.1 description served at GET /openapi.json, built from the
 * route table (api_routes) and a static description of each route: summary, schemas,
 * parameters and the problem codes it can answer with.
 */
#ifndef TD_API_OPENAPI_H
#define TD_API_OPENAPI_H

#include <jansson.h>
#include <stddef.h>

/* A new document (caller json_decref()s). Every route of api_routes() that has a
 * description appears under its pattern (tenant routes without /t/{slug}); a route
 * without one is left out, which the unit test reports. Thread-safe. */
json_t *api_openapi_build(void);

/* Add each served table of d to doc (built by api_openapi_build): its paths and a JSON
 * Schema of its row (openapi_res.c). */
struct res_desc;
void api_openapi_resources(json_t *doc, const struct res_desc *d);

/* The described operations, for the test: *n gets their number; method and path of
 * entry i come back through api_openapi_described(). */
size_t api_openapi_described_count(void);
void api_openapi_described(size_t i, const char **method, const char **path);

#endif
