/* The auth-cache daemon: its loop, scope, store, socket and links */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

#include "auth-cache/broker-link.h"
#include "auth-cache/scope-sync.h"
#include "auth-cache/scope.h"
#include "auth-cache/x509-check.h"
#include "proto/ipc/frame.h"
#include "proto/ipc/server.h"
#include "proto/runtime/config.h"
#include "proto/runtime/daemon-event.h"
#include "proto/store/kv.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

typedef struct Manager {
        sd_event *event;
        DaemonSignals signals;

        Config *config;
        char *store_dir;          /* {storage_dir}/scope */
        Kv *kv;
        Scope *scope;             /* finalized; what we serve */
        X509Trust *trust;         /* listeners.tls.client_ca_file; NULL when none is configured */
        uint64_t last_sync_ms;    /* realtime of the last complete sync (persisted), 0 = never */

        FrameServer *server;
        ScopeSync *sync;
        BrokerLink *broker;

        RateLimit refusal_log;
        sd_event_source *trim_source; /* a while after a sync: its pages back to the kernel */
} Manager;

/* Takes *config. Creates the loop (watchdog on) and the signal sources; opens nothing. */
int manager_new(Manager **ret, Config **config);
Manager *manager_free(Manager *m);

/*
 * Opens {storage_dir}/scope and loads the persisted scope. A corrupt or
 * unreadable store is an error naming the folder (logged here); nothing is
 * deleted. A missing store is created.
 */
int manager_open_store(Manager *m);
/*
 * Loads listeners.tls.client_ca_file, if set. An unreadable or malformed
 * bundle is a configuration error (logged here, naming the file): -EINVAL.
 */
int manager_load_trust(Manager *m);
/* Binds {runtime_dir}/auth-cache.sock (mode 0660). */
int manager_listen(Manager *m);
/* Starts the first scope sync and prepares the broker link. */
int manager_start(Manager *m);

/*
 * Replaces the served scope by *scope (finalized): one kv batch, then the
 * swap, then kicks for identities that were removed or disabled. Takes
 * *scope on success; on failure the old scope stays (on disk and served).
 */
int manager_apply_scope(Manager *m, Scope **scope, uint64_t sync_ms);

/* manager-requests.c: the FrameHandler of auth-cache.sock. */
int manager_handle_request(void *userdata, const Frame *request, FrameBuilder *reply);
/* The PEER_* rights a request needs (proto/ipc/server.h FrameAccess). */
unsigned manager_request_access(void *userdata, const Frame *request);

/* manager-control.c: WIRE_CONTROL_REQUEST commands (status, devices, sync). */
int manager_control(Manager *m, const Frame *request, FrameBuilder *reply);

DEFINE_CLEANUP_FUNC(Manager, manager_free);
