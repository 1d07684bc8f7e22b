/* Asks hub-store whether the uplink is down, so a restarted twin-sync knows at once */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define UPLINK_QUERY_TIMEOUT_USEC (500u * 1000u)

typedef enum UplinkKnown {
        UPLINK_KNOWN_UNSURE,    /* no link has tried yet, or hub-store did not say */
        UPLINK_KNOWN_UP,        /* some link is up */
        UPLINK_KNOWN_DOWN,      /* links tried and none is up */
        _UPLINK_KNOWN_MAX,
        _UPLINK_KNOWN_INVALID = -EINVAL,
} UplinkKnown;

/*
 * Parses hub-store's "status" control reply (hub-store/manager-control.c: a
 * JSON object with "uplink": "up" | "down" | "idle", "links_up": a count and
 * "offline_since_ms": a time while the uplink is known down, else null; other
 * keys ignored). -EBADMSG when it is not such an object: the caller then
 * stays unsure.
 */
int uplink_status_parse(const void *data, size_t len, UplinkKnown *ret);

/*
 * One "status" control request to hub-store on socket_path, within
 * timeout_usec. Negative errno when hub-store is not running, does not
 * answer in time, or answers something else.
 */
int uplink_query(const char *socket_path, uint64_t timeout_usec, UplinkKnown *ret);
