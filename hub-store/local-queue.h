/* Delivery of a local endpoint's queue (module inputs, cloud-to-device) through the broker */
#pragma once

#include <stdbool.h>

#include "hub-store/sender.h"
#include "hub-store/store.h"
#include "proto/ipc/bus.h"

/*
 * Endpoints other than $upstream are delivered on this gateway: a message
 * routed to a module input, or a cloud-to-device message for a child. Each
 * stream (endpoint, priority, sender) is delivered in order through the
 * internal bus ("$edgehub/deliver", proto/ipc/bus.h) and removed only once the
 * broker has taken it for the connected target (PUBACK 0x00/0x10). A target
 * that is not connected (0x87) blocks only its own queues until it is back;
 * nothing else waits for it. After any failure in a window, later
 * successes of that window are not counted and the window is sent again
 * from its first record: duplicates, never reordering (invariant 2).
 */
#define LOCAL_ENDPOINT_C2D "$c2d"

typedef struct LocalQueue {
        StoreStream *stream;
        Sender sender;
        Bus *bus;
        char *edge_device_id;
        char *target;           /* the client id it is delivered to */
        char *module;           /* module input: the module id; NULL for C2D */
        char *input;            /* module input: the input name */
        int next_mid;
        unsigned in_flight;     /* bus publishes not answered yet */
        bool failed;            /* something in the current window was not delivered */
        bool blocked;           /* the target was not connected */
} LocalQueue;

/* -EINVAL when the stream's endpoint is not a local one. */
int local_queue_new(LocalQueue **ret, Store *store, StoreStream *st, Bus *bus, const char *edge_device_id,
                    uint64_t ttl_ms);
LocalQueue *local_queue_free(LocalQueue *q);

/* Publishes what it can (nothing while blocked, failed or the bus is down). */
void local_queue_fill(LocalQueue *q);
/* The target connected: try again. */
void local_queue_unblock(LocalQueue *q);
/* The bus came back: what was in flight is lost, start again from the first stored record. */
void local_queue_restart(LocalQueue *q);

/* An endpoint name: "/modules/{m}/inputs/{i}" (module inputs) or LOCAL_ENDPOINT_C2D. */
bool local_endpoint_is_valid(const char *endpoint);
