/* Route specifications: a route's name, text, priority and TTL as a source gave them */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Where routes come from (the config file's routes:, the $edgeHub twin's
 * desired properties) is kept apart from the route language (route.h): the
 * sources only collect RouteSpecs; route_table_new() parses them.
 */
#define ROUTE_NAME_MAX 128u       /* bytes */
#define ROUTE_SPECS_MAX 1024u     /* routes in one list */
#define ROUTE_PRIORITY_MAX 9u     /* 0 = most urgent, as in edgeHub's schema 1.1 */
#define ROUTE_PRIORITY_DEFAULT 0u

typedef struct RouteSpec {
        char *name;
        char *text;                  /* "FROM ... [WHERE ...] INTO ..." */
        uint8_t priority;            /* 0..ROUTE_PRIORITY_MAX */
        uint32_t time_to_live_secs;  /* 0 = the global store-and-forward TTL */
} RouteSpec;

typedef struct RouteSpecs {
        RouteSpec *specs;
        size_t n;
} RouteSpecs;

#define ROUTE_SPECS_NULL ((RouteSpecs){})

/* Names: 1..ROUTE_NAME_MAX bytes, no control characters. */
bool route_spec_name_is_valid(const char *name);

/*
 * Appends a copy. -EINVAL bad name or priority, -EEXIST name already in the
 * list, -E2BIG over ROUTE_SPECS_MAX, -ENOMEM.
 */
int route_specs_add(RouteSpecs *l, const char *name, const char *text, unsigned priority,
                    uint64_t time_to_live_secs);
const RouteSpec *route_specs_find(const RouteSpecs *l, const char *name);
void route_specs_deinit(RouteSpecs *l);
/* A deep copy into *ret (ROUTE_SPECS_NULL or already deinit'ed). */
int route_specs_copy(const RouteSpecs *l, RouteSpecs *ret);
