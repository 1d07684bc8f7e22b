/* The twin-sync daemon: its loop, store, bus and control socket */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "proto/iothub/twin-topic.h"
#include "proto/ipc/bus.h"
#include "proto/ipc/frame.h"
#include "proto/ipc/server.h"
#include "proto/runtime/config.h"
#include "proto/runtime/daemon-event.h"
#include "proto/store/key-map.h"
#include "proto/store/kv.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"
#include "twin-sync/twin.h"

/* How long the cloud has to answer before we fall back (GET: the cache; reported: retry). */
#define TWIN_FETCH_TIMEOUT_USEC (5u * 1000u * 1000u)
#define TWIN_FETCH_TIMEOUT_UNSURE_USEC (2u * 1000u * 1000u)
#define TWIN_FETCH_RESEND_USEC (200u * 1000u) /* a GET nobody read (hub-store not on the bus yet) */
#define TWIN_PUSH_TIMEOUT_USEC (10u * 1000u * 1000u)
/* hub-store holds a request up to 30 s while it opens the link: wait that long before sending it again. */
#define TWIN_PUSH_TIMEOUT_LINK_DOWN_USEC (35u * 1000u * 1000u)
#define TWIN_PUSH_BACKOFF_MAX_USEC (30u * 1000u * 1000u)
/* While no upstream link is up: fetch the $edgeHub twin this often, which makes hub-store try its link. */
#define TWIN_PROBE_INTERVAL_USEC (5u * 1000u * 1000u)

typedef struct Manager {
        sd_event *event;
        DaemonSignals signals;
        sd_event_source *sync_timer;
        sd_event_source *probe_timer;
        sd_event_source *clients_defer;

        Config *config;
        char *store_dir;           /* {storage_dir}/twins */
        Kv *kv;
        KeyMap twins;              /* identity -> Twin */
        char *edgehub_identity;    /* {edge_device_id}/$edgeHub */

        FrameServer *server;
        char *hub_store_socket;
        Bus *bus;

        BusRequestIds rids;
        unsigned links_up;         /* identities whose upstream link is up */
        bool heard_link;           /* any link state since we started */

        /* $edgeHub: the desired version last applied to hub-store, and its outcome. */
        int64_t applied_version;
        bool clients_dirty;

        RateLimit bad_input_log;
} Manager;

/* Takes *config. Creates the loop (watchdog on) and the signal sources; opens nothing. */
int manager_new(Manager **ret, Config **config);
Manager *manager_free(Manager *m);

/* Opens {storage_dir}/twins and loads every twin; logs its errors. */
int manager_open_store(Manager *m);
/* Binds {runtime_dir}/twin-sync.sock (mode 0660). */
int manager_listen(Manager *m);
/* Connects to the bus and fetches the $edgeHub twin. */
int manager_start(Manager *m);

/* The twin of identity, created (empty, version 0) if new. NULL on ENOMEM. */
Twin *manager_twin(Manager *m, const char *identity);
int manager_save(Manager *m, Twin *t, const void *patch, size_t patch_len);

/* manager-bus.c: what arrives on the bus. */
void manager_on_bus_message(Bus *b, const BusMessage *msg, void *userdata);
void manager_on_bus_connected(Bus *b, void *userdata);

/* manager-twin.c: the twin flows. */
bool manager_online(Manager *m, const Twin *t);
void manager_device_get(Manager *m, Twin *t, const char *rid);
void manager_device_reported(Manager *m, Twin *t, const char *rid, const void *payload, size_t len);
void manager_cloud_response(Manager *m, Twin *t, const TwinTopic *tt, const void *payload, size_t len);
void manager_cloud_desired(Manager *m, Twin *t, int64_t version, const void *payload, size_t len);
void manager_fetch(Manager *m, Twin *t);
void manager_push(Manager *m, Twin *t);
void manager_deliver(Manager *m, Twin *t);
/* Takes reported (the twin's new reported document) and queues patch durably; the caller pushes. */
int manager_queue_reported(Manager *m, Twin *t, json_t *reported, const void *patch, size_t len);
void manager_link_changed(Manager *m, Twin *t, bool up);
int manager_reply(Manager *m, const char *identity, int status, const char *rid, int64_t version, const char *body);

/* manager-edgehub.c: the $edgeHub twin as the hub's live configuration. */
void manager_edgehub_desired_changed(Manager *m, Twin *t);
void manager_edgehub_clients_changed(Manager *m);

/* manager-control.c: WIRE_CONTROL_REQUEST commands (twins, twin). */
int manager_handle_request(void *userdata, const Frame *request, FrameBuilder *reply);
/* The PEER_* rights a request needs (proto/ipc/server.h FrameAccess). */
unsigned manager_request_access(void *userdata, const Frame *request);

DEFINE_CLEANUP_FUNC(Manager, manager_free);
