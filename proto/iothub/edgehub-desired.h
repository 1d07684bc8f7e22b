/* The $edgeHub module twin's desired properties: routes and store-and-forward TTL */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto/iothub/route-spec.h"

/*
 * {"schemaVersion": "1.0" | "1.1",
 *  "routes": {"name": "FROM ... INTO ...",                       1.0 and 1.1
 *             "name": {"route": "...", "priority": 0..9,         1.1 only
 *                      "timeToLiveSecs": N}},
 *  "storeAndForwardConfiguration": {"timeToLiveSecs": N},        optional
 *  "$version": N, ...}                                           other keys ignored
 * Only the shape is checked here; route_table_new() checks the routes'
 * syntax. Parsed once, here (fuzz-edgehub-desired.c).
 */
#define EDGEHUB_DESIRED_MAX (64u * 1024u) /* bytes; IoT Hub caps desired properties at 32 KiB */

typedef struct EdgeHubDesired {
        char *schema_version;
        RouteSpecs routes;
        uint64_t ttl_secs;  /* storeAndForwardConfiguration.timeToLiveSecs; 0 = not given */
        int64_t version;    /* "$version"; -1 = not given */
} EdgeHubDesired;

#define EDGEHUB_DESIRED_NULL ((EdgeHubDesired){ .version = -1 })

/*
 * Parses the desired properties JSON in buf[0..len). -EBADMSG (with one line
 * in *ret_error, fit for lastDesiredStatus) when it is not JSON, a type is
 * wrong, the schemaVersion is unknown or a value is out of range; -ENOMEM.
 */
int edgehub_desired_parse(const void *buf, size_t len, EdgeHubDesired *ret, char **ret_error);
void edgehub_desired_deinit(EdgeHubDesired *d);
