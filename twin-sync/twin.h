/* One identity's twin as twin-sync keeps it: the cloud's desired, the device's reported, what the device saw */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "proto/ipc/bus.h"
#include "proto/util/cleanup.h"

/*
 * The conflict rule: the cloud owns desired, the device owns reported.
 *   desired          the cloud's desired properties as last fetched or
 *                    patched (version desired_version; 0 = never heard from
 *                    the cloud: an empty twin);
 *   reported         the cloud's reported properties with every patch the
 *                    device sent applied on top, pending or not (version
 *                    reported_version, bumped for each patch we accept);
 *   seen             the desired state the device was last given (a GET
 *                    answer, or patches delivered up to seen_version); the
 *                    next delivery is diff(seen, desired), so a device that
 *                    missed patches gets exactly what changed, as one patch.
 * The persistent part (twin-store.c) is everything above plus the reported
 * patch queue; the rest is runtime state.
 */
typedef struct GetWaiter GetWaiter;

typedef struct Twin {
        char *identity;
        void *manager;            /* the owner, for bus callbacks whose userdata is the twin */

        json_t *desired;
        int64_t desired_version;
        json_t *reported;
        int64_t reported_version;
        json_t *seen;
        int64_t seen_version;
        uint64_t next_seq;        /* sequence of the next queued reported patch */
        uint64_t n_pending;       /* reported patches queued, not yet acknowledged by the cloud */
        uint64_t pending_bytes;   /* their bytes (storage.twin_queue_max_bytes bounds it) */

        /* runtime */
        BusLinkState link;
        bool heard_presence;      /* presence known since we started */
        bool connected;
        bool subscribed;          /* to desired patches, since it connected */

        char *fetch_rid;          /* full twin GET upstream in flight */
        char *late_fetch_rid;     /* the last one that timed out: its answer is still the cloud's twin */
        bool refetch;             /* the link came up while a fetch was in flight: fetch again after it */
        sd_event_source *fetch_timer;
        sd_event_source *fetch_resend; /* the GET found no reader on the bus: send it again shortly */
        GetWaiter *waiters;       /* device GETs waiting for that fetch */

        char *push_rid;           /* reported patch upstream in flight */
        uint64_t push_seq;
        size_t push_len;          /* bytes of the patch in flight */
        sd_event_source *push_timer;
        uint64_t push_backoff_usec;

        bool delivering;          /* a desired delivery awaits its PUBACK */
        int64_t delivering_version;
        json_t *delivering_state; /* the desired state being delivered */
        bool redeliver;           /* desired changed while delivering */
} Twin;

struct GetWaiter {
        GetWaiter *next;
        char rid[];
};

int twin_new(Twin **ret, const char *identity);
Twin *twin_free(Twin *t);

/* {"desired": {..., "$version": n}, "reported": {..., "$version": m}}, the answer to a GET. */
json_t *twin_view(const Twin *t);

/*
 * Applies a validated reported patch: -EMSGSIZE when the resulting document
 * would be over IoT Hub's size (nothing changed), else the new version.
 * The caller persists and queues.
 */
int twin_check_reported(const Twin *t, const json_t *patch, json_t **ret_reported);

/*
 * The desired patch to give the device now, or NULL when what it saw equals
 * the current state (then only seen_version may lag). The patch carries
 * "$version": desired_version.
 */
json_t *twin_pending_desired(const Twin *t);

int twin_add_waiter(Twin *t, const char *rid);

DEFINE_CLEANUP_FUNC(Twin, twin_free);
