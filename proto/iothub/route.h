/* edgeHub routes: FROM <source> [WHERE <condition>] INTO <sink>, and tables of them */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/iothub/route-condition.h"
#include "proto/iothub/route-message.h"
#include "proto/iothub/route-spec.h"
#include "proto/util/cleanup.h"

/*
 * [SELECT * ] FROM <source> [WHERE <condition>] INTO <sink>, keywords
 * case-insensitive as in edgeHub. Sources are edgeHub's message source paths
 * (here {*} stands for the star, to keep this comment closed); ids and names
 * compare case-insensitively, as edgeHub's prefix match does:
 *   /{*}                                everything
 *   /messages/{*}                       device telemetry and module outputs
 *   /messages/events                    device telemetry only (no module's)
 *   /messages/modules/{*}               any module's output
 *   /messages/modules/M/{*}             any message of module M
 *   /messages/modules/M/outputs/{*}     any output of module M (not output-less)
 *   /messages/modules/M/outputs/O       output O of module M
 *   /twinChangeNotifications            accepted, matches no message (none here)
 * A trailing "/{*}" may be left out. To tell device telemetry from module
 * output in a condition: NOT IS_DEFINED($connectionModuleId).
 * Sinks: $upstream | BrokeredEndpoint("/modules/M/inputs/I") (either quote).
 * Conditions: route-condition.h.
 *
 * Errors are -EINVAL with "position N: expected X, found 'Y'" (N is the
 * 1-based byte offset in the route text), or -ENOMEM.
 */
#define ROUTE_TEXT_MAX 8192u
#define ROUTE_NAME_PART_MAX 128u  /* output and input names */

typedef enum RouteSourceKind {
        ROUTE_SOURCE_ALL,
        ROUTE_SOURCE_MESSAGES,
        ROUTE_SOURCE_TELEMETRY,
        ROUTE_SOURCE_MODULES,
        ROUTE_SOURCE_MODULE,
        ROUTE_SOURCE_MODULE_OUTPUTS,
        ROUTE_SOURCE_MODULE_OUTPUT,
        ROUTE_SOURCE_TWIN_CHANGES,
        _ROUTE_SOURCE_KIND_MAX,
        _ROUTE_SOURCE_KIND_INVALID = -22, /* -EINVAL */
} RouteSourceKind;

typedef struct RouteSource {
        RouteSourceKind kind;
        char *module_id;    /* MODULE, MODULE_OUTPUTS, MODULE_OUTPUT */
        char *output;       /* MODULE_OUTPUT */
} RouteSource;

typedef enum RouteSinkKind {
        ROUTE_SINK_UPSTREAM,     /* $upstream: the IoT Hub */
        ROUTE_SINK_MODULE_INPUT, /* BrokeredEndpoint("/modules/{m}/inputs/{i}") */
        _ROUTE_SINK_KIND_MAX,
        _ROUTE_SINK_KIND_INVALID = -22, /* -EINVAL */
} RouteSinkKind;

typedef struct RouteSink {
        RouteSinkKind kind;
        char *module_id;    /* MODULE_INPUT */
        char *input;        /* MODULE_INPUT */
} RouteSink;

typedef struct Route {
        char *text;                 /* as given */
        RouteSource source;
        RouteCondition *condition;  /* NULL: no WHERE */
        RouteSink sink;
} Route;

/* Parses text[0..len) (NUL bytes are refused). */
int route_parse(const char *text, size_t len, Route **ret, char **ret_error);
Route *route_free(Route *r);

/* Source and condition both match. */
bool route_match(const Route *r, const RouteMessage *m);
bool route_source_match(const RouteSource *s, const RouteMessage *m);

bool route_sink_equal(const RouteSink *a, const RouteSink *b);
/* "$upstream" or "/modules/{m}/inputs/{i}": a stable name for an endpoint. */
int route_sink_to_string(const RouteSink *s, char **ret);

/* ---- tables ---- */

typedef struct RouteTableEntry {
        char *name;
        uint8_t priority;            /* 0 = most urgent */
        uint32_t time_to_live_secs;  /* 0 = the global TTL */
        Route *route;
} RouteTableEntry;

typedef struct RouteTable {
        RouteTableEntry *entries;
        size_t n;
} RouteTable;

/*
 * Parses every spec. Bad routes are left out, each reported as one line
 * "route 'NAME': position N: ..." in *ret_errors (newline-separated, NULL if
 * none); returns how many were left out (>= 0), or -ENOMEM / -EINVAL.
 * Callers that want all-or-nothing (a twin update) check for > 0.
 */
int route_table_new(const RouteSpecs *specs, RouteTable **ret, char **ret_errors);
RouteTable *route_table_free(RouteTable *t);

/*
 * The entries matching m, in table order, at most one per (sink, priority,
 * TTL): edgeHub delivers one copy per distinct route result. Writes at most
 * max pointers to ret and returns how many; max >= t->n sees every match.
 */
size_t route_table_match(const RouteTable *t, const RouteMessage *m, const RouteTableEntry **ret, size_t max);

DEFINE_CLEANUP_FUNC(Route, route_free);
DEFINE_CLEANUP_FUNC(RouteTable, route_table_free);
