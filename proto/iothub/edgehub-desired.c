/* The $edgeHub module twin's desired properties: routes and store-and-forward TTL */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "proto/iothub/edgehub-desired.h"
#include "proto/util/cleanup.h"
#include "proto/util/shown.h"


typedef struct Schema {
        const char *version;
        bool route_objects;   /* routes may be {route, priority, timeToLiveSecs} */
} Schema;

/* edgeHub's schema versions we understand; a new one is a row. */
static const Schema schemas[] = {
        { "1.0", false },
        { "1.1", true },
        { "1.2", true },  /* adds fields of other features; routes and TTL as in 1.1 */
};

void edgehub_desired_deinit(EdgeHubDesired *d) {
        if (!d)
                return;
        free(d->schema_version);
        route_specs_deinit(&d->routes);
        *d = EDGEHUB_DESIRED_NULL;
}

static int parse_route(const Schema *schema, const char *name, json_t *v, RouteSpecs *specs, char **ret_error) {
        char n[SHOWN_MAX + 4];
        json_int_t priority = ROUTE_PRIORITY_DEFAULT, ttl = 0;
        const char *text = NULL;
        json_error_t e;

        shown(name, n);
        if (!route_spec_name_is_valid(name))
                return fail_bad_message(ret_error, "routes: invalid route name '%s'", n);
        if (json_is_string(v))
                text = json_string_value(v);
        else if (!schema->route_objects)
                return fail_bad_message(ret_error, "routes.%s: expected a string (schemaVersion %s)", n, schema->version);
        else if (json_unpack_ex(v, &e, JSON_STRICT, "{s:s, s?I, s?I}", "route", &text, "priority", &priority,
                                "timeToLiveSecs", &ttl) < 0)
                return fail_bad_message(ret_error, "routes.%s: expected a string or {route, priority, timeToLiveSecs}: %s", n,
                            e.text);
        if (priority < 0 || priority > ROUTE_PRIORITY_MAX)
                return fail_bad_message(ret_error, "routes.%s: priority must be 0..%u", n, ROUTE_PRIORITY_MAX);
        if (ttl < 0 || (uint64_t) ttl > UINT32_MAX)
                return fail_bad_message(ret_error, "routes.%s: timeToLiveSecs must be 0..%u", n, UINT32_MAX);

        int r = route_specs_add(specs, name, text, (unsigned) priority, (uint64_t) ttl);
        if (r == -E2BIG)
                return fail_bad_message(ret_error, "routes: more than %u routes", ROUTE_SPECS_MAX);
        if (r == -EEXIST) /* JSON_REJECT_DUPLICATES makes this unreachable, but say so if it is not */
                return fail_bad_message(ret_error, "routes.%s: duplicate route name", n);
        if (r == -EINVAL)
                return fail_bad_message(ret_error, "routes.%s: invalid route", n);
        return r;
}

int edgehub_desired_parse(const void *buf, size_t len, EdgeHubDesired *ret, char **ret_error) {
        _cleanup_(edgehub_desired_deinit) EdgeHubDesired d = EDGEHUB_DESIRED_NULL;
        json_auto_t *root = NULL;
        json_t *routes = NULL, *snf = NULL, *v;
        json_int_t version = -1, ttl = 0;
        const char *schema_version = NULL, *name;
        const Schema *schema = NULL;
        json_error_t e;
        int r;

        if ((!buf && len > 0) || !ret)
                return -EINVAL;
        if (ret_error)
                *ret_error = NULL;
        if (len > EDGEHUB_DESIRED_MAX)
                return fail_bad_message(ret_error, "desired properties larger than %u bytes", EDGEHUB_DESIRED_MAX);

        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
        if (!root)
                return fail_bad_message(ret_error, "invalid JSON at line %d column %d: %s", e.line, e.column, e.text);
        /* Not JSON_STRICT: the twin carries $version, $metadata and keys of newer schemas. */
        if (json_unpack_ex(root, &e, 0, "{s:s, s:o, s?o, s?I}", "schemaVersion", &schema_version, "routes", &routes,
                           "storeAndForwardConfiguration", &snf, "$version", &version) < 0)
                return fail_bad_message(ret_error, "invalid desired properties: %s", e.text);

        for (size_t i = 0; i < ELEMENTSOF(schemas) && !schema; i++)
                if (strcmp(schemas[i].version, schema_version) == 0)
                        schema = &schemas[i];
        if (!schema) {
                char s[SHOWN_MAX + 4];
                shown(schema_version, s);
                return fail_bad_message(ret_error, "unsupported schemaVersion '%s' (1.0, 1.1 or 1.2)", s);
        }
        d.schema_version = strdup(schema->version);
        if (!d.schema_version)
                return -ENOMEM;
        d.version = version;

        if (!json_is_object(routes))
                return fail_bad_message(ret_error, "routes: expected an object");
        json_object_foreach(routes, name, v) {
                r = parse_route(schema, name, v, &d.routes, ret_error);
                if (r < 0)
                        return r;
        }

        if (snf && !json_is_null(snf)) {
                if (json_unpack_ex(snf, &e, 0, "{s?I}", "timeToLiveSecs", &ttl) < 0)
                        return fail_bad_message(ret_error, "storeAndForwardConfiguration: %s", e.text);
                bool given = json_is_object(snf) && json_object_get(snf, "timeToLiveSecs");
                if (given && (ttl < 1 || (uint64_t) ttl > UINT32_MAX))
                        return fail_bad_message(ret_error, "storeAndForwardConfiguration.timeToLiveSecs must be 1..%u",
                                    UINT32_MAX);
                d.ttl_secs = (uint64_t) ttl;
        }

        *ret = d;
        d = EDGEHUB_DESIRED_NULL;
        return 0;
}
