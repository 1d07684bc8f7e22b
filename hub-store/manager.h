/* hub-store's Manager: the store, the socket, the upstream links, wired together */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <jansson.h>
#include <systemd/sd-event.h>

#include "hub-store/device.h"
#include "hub-store/ingest.h"
#include "hub-store/link.h"
#include "hub-store/metrics.h"
#include "hub-store/store-location.h"
#include "hub-store/store.h"
#include "proto/ipc/bus.h"
#include "proto/ipc/client.h"
#include "proto/ipc/server.h"
#include "proto/runtime/config.h"
#include "proto/runtime/daemon-event.h"
#include "proto/store/key-map.h"
#include "proto/util/backoff.h"
#include "proto/util/cleanup.h"

typedef enum UplinkState {
        UPLINK_UNKNOWN,  /* no link has tried yet */
        UPLINK_UP,       /* the hub answered the last time we asked */
        UPLINK_DOWN,     /* connects fail and no link is up */
} UplinkState;

struct Manager {
        sd_event *event;
        DaemonSignals signals;
        Config *config;
        Store *store;
        StoreLocation location;    /* where the store lives, and a move in progress */
        sd_event_source *move_source; /* defer: the move a storageFolder request accepted */
        char *storage_error;       /* why the last move failed; NULL none */
        Importer *importer;        /* the plugin's ingest log into the store */
        FrameServer *server;
        FrameClient auth_cache;    /* keys for upstream tokens, scope sync */
        Bus *bus;                  /* the internal bus: requests for the hub, cloud traffic for daemons */
        KeyMap local_queues;       /* stream prefix -> LocalQueue: module inputs, cloud-to-device */
        uint64_t auth_cache_down_until; /* µs: fail key lookups fast while it is unreachable */

        KeyMap devices;            /* identity -> Device */
        LinkSettings link_settings;

        TokenBucket connect_bucket;
        Link **connect_queue;      /* FIFO of links WAITING for the rate limit */
        size_t n_connect_queue, connect_queue_cap;
        sd_event_source *connect_source;

        struct RouteTable *routes;  /* never NULL once started */
        uint64_t *route_matched;    /* per route of the table: messages it took */
        uint64_t dropped_no_route;
        uint64_t ttl_sec;           /* in force: the twin's, else the configuration's */
        char routes_source[64];

        UplinkState uplink;
        uint64_t offline_since_ms; /* realtime; valid while DOWN */
        uint64_t offline_count;
        sd_event_source *probe_source;
        size_t probe_cursor;

        sd_event_source *tick_source;   /* 1 s: idle links, keepalive, TTL sweep start */
        sd_event_source *sweep_source;  /* defer: more TTL slices */
        sd_event_source *sync_source;   /* sync: periodic */
        unsigned ticks;

        MetricsServer *metrics;    /* metrics.port != 0 */

        bool store_failing;
        uint64_t store_failures;
};

/* Takes ownership of config. */
int manager_new(Manager **ret, Config *config);
Manager *manager_free(Manager *m);
/* Opens the store (refusing a corrupt one) and binds the socket. */
int manager_start(Manager *m);

/* manager-links.c */
int manager_device_get(Manager *m, const char *identity, Device **ret);
Device *manager_device_find(Manager *m, const char *identity);
/* d's needs changed (presence, a stream, a request): opens, starts or kicks its link. */
void manager_device_changed(Manager *m, Device *d);
/* Something was appended to st ($upstream of an identity): its Device's link sends it. */
void manager_upstream_appended(Manager *m, StoreStream *st);
void manager_links_tick(Manager *m);
void manager_links_free(Manager *m);
int manager_links_setup(Manager *m);
const char *manager_uplink_string(Manager *m);
unsigned manager_links_up(Manager *m);
unsigned manager_links_total(Manager *m);

/* manager-bus.c */
int manager_bus_setup(Manager *m);
/* The link of d went up or down: send what waited, tell the daemons. */
void manager_bus_link_changed(Manager *m, Device *d, bool up);
/* Something the hub sent on d's link. */
void manager_cloud_message(Manager *m, Device *d, const char *topic, const void *payload, size_t len);

/* manager-local.c */
typedef struct LocalQueue LocalQueue;
int manager_local_queue(Manager *m, StoreStream *st, uint64_t ttl_ms, LocalQueue **ret);
/* Appends msg to a local endpoint's stream and starts its delivery. */
int manager_store_local(Manager *m, const char *endpoint, uint8_t priority, uint64_t ttl_ms, const StoreMessage *msg,
                        StoreOrigin origin);
/* Something was appended to st (a local endpoint's): its queue delivers it. */
void manager_local_appended(Manager *m, StoreStream *st);
int manager_c2d_store(Manager *m, Device *d, const char *topic, const void *payload, size_t len);
void manager_local_presence(Manager *m, const char *identity, bool connected);
void manager_local_bus_connected(Manager *m);
void manager_local_tick(Manager *m);
/* Records held back for a flush are durable now: every link and local queue sends again. */
void manager_kick_senders(Manager *m);
int manager_local_setup(Manager *m);
void manager_local_free(Manager *m);
/* manager-storage.c */
/* Reads where the store lives ({storage.dir}/store-location.json), finishing a completed move. */
int manager_storage_resolve(Manager *m);
/* With the store open: redoes a move a crash interrupted. */
void manager_storage_resume(Manager *m);
void manager_reply_storage_folder(Manager *m, const Frame *req, FrameBuilder *reply);

/* manager.c: storage failures, logged once per burst. */
void manager_store_result(Manager *m, int r);
/*
 * Appends msg to its sender's stream of endpoint at priority, whose time to
 * live becomes ttl_ms (0: the store-wide one); the stream in *ret.
 * origin: see StoreOrigin (store.h).
 */
int manager_store_append(Manager *m, const char *endpoint, uint8_t priority, uint64_t ttl_ms, const StoreMessage *msg,
                         StoreOrigin origin, StoreStream **ret);
/* st got a message: the link or local queue that sends it goes on. */
void manager_stream_appended(Manager *m, StoreStream *st);

/* manager-routes.c */
int manager_routes_setup(Manager *m);
void manager_routes_free(Manager *m);

/* The streams one message was appended to, one per route that took it, in route order. */
typedef struct RouteAppended {
        StoreStream *stack[16];
        StoreStream **heap;        /* instead of stack when more routes than that */
        size_t n;
} RouteAppended;

#define ROUTE_APPENDED_NULL ((RouteAppended){})

static inline StoreStream *route_appended_at(const RouteAppended *a, size_t i) {
        return a->heap ? a->heap[i] : a->stack[i];
}

static inline void route_appended_deinit(RouteAppended *a) {
        free(a->heap);
        *a = ROUTE_APPENDED_NULL;
}

/*
 * Stores msg in the queue of every endpoint its routes lead to (WAL before
 * return, or the ingest log until a flush: invariant 1), evaluating the
 * routes on rm (msg's identity and bag, parsed once where it entered; NULL:
 * the bag did not parse, counted as no_route like a message no route takes).
 * The streams appended to are in *ret, also those before a failure: the
 * caller starts their senders (manager_stream_appended()).
 */
int manager_route_message(Manager *m, const StoreMessage *msg, const RouteMessage *rm, StoreOrigin origin,
                          RouteAppended *ret);
void manager_reply_config_apply(Manager *m, const Frame *req, FrameBuilder *reply);

/* manager-control.c: answers a WIRE_CONTROL_REQUEST (wire_control_serve). */
void manager_reply_control(Manager *m, const Frame *request, FrameBuilder *reply);

DEFINE_CLEANUP_FUNC(Manager, manager_free);
