/* hub-store's Manager: the store, the socket, the upstream links, wired together */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "hub-store/manager.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/daemon.h"
#include "proto/runtime/log.h"
#include "proto/store/ingest-log.h"
#include "proto/util/cleanup.h"

#define TICK_USEC 1000000u
/* The sync window is a promise (DESIGN.md: power loss loses at most sync_interval). */
#define SYNC_ACCURACY_USEC 10000u
/* TTL sweep slice: bounded work per loop iteration (watchdog, socket latency). */
#define SWEEP_SLICE_REMOVALS 1000u
/* Reclaim space of removed records this often (in ticks). */
#define COMPACT_EVERY_TICKS 60u
/* After a write failure (disk full), try a fresh RocksDB instance this often (in ticks). */
#define STORE_REOPEN_EVERY_TICKS 5u
/* systemctl status shows this (in ticks). */
#define STATUS_EVERY_TICKS 5u
/* At most one "store full" warning this often. */

int manager_new(Manager **ret, Config *config) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(*m));
        int r;

        if (!m)
                return -ENOMEM;
        m->config = config;
        m->auth_cache = FRAME_CLIENT_NULL;

        r = daemon_event_new(&m->event, &m->signals, NULL, m);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* Links and local queues first: they point into the store's streams. */
        manager_links_free(m);
        manager_local_free(m);
        manager_routes_free(m);
        m->bus = bus_free(m->bus);
        m->metrics = metrics_server_free(m->metrics);
        m->server = frame_server_free(m->server);
        m->tick_source = sd_event_source_disable_unref(m->tick_source);
        m->sweep_source = sd_event_source_disable_unref(m->sweep_source);
        m->move_source = sd_event_source_disable_unref(m->move_source);
        m->sync_source = sd_event_source_disable_unref(m->sync_source);
        m->importer = importer_free(m->importer);
        /* store_free() syncs the WAL: a clean stop loses nothing even with sync: periodic. */
        m->store = store_free(m->store);
        store_location_deinit(&m->location);
        free(m->storage_error);
        frame_client_deinit(&m->auth_cache);
        m->event = daemon_event_free(m->event, &m->signals);
        config_free(m->config);
        free(m);
        return NULL;
}

/* Storage failures: one error per burst, one notice when it is over. */
void manager_store_result(Manager *m, int r) {
        if (r >= 0 || r == -ENOBUFS) {
                if (m->store_failing && r >= 0) {
                        log_notice("Message store writes work again after %" PRIu64 " failure(s)", m->store_failures);
                        m->store_failing = false;
                        m->store_failures = 0;
                }
                return;
        }
        m->store_failures++;
        if (!m->store_failing) {
                log_error_errno(r, "Message store write failed, refusing messages until it works again: %m");
                m->store_failing = true;
        }
}

int manager_store_append(Manager *m, const char *endpoint, uint8_t priority, uint64_t ttl_ms, const StoreMessage *msg,
                         StoreOrigin origin, StoreStream **ret) {
        StoreStream *st;
        int r;

        r = store_stream_get(m->store, endpoint, priority, msg->identity, &st);
        if (r < 0)
                return r;
        st->ttl_ms = ttl_ms;
        r = store_append_from(m->store, st, msg, origin, NULL);
        if (r < 0)
                return r;
        *ret = st;
        return 0;
}

void manager_stream_appended(Manager *m, StoreStream *st) {
        if (strcmp(st->endpoint, STORE_ENDPOINT_UPSTREAM) == 0)
                manager_upstream_appended(m, st);
        else
                manager_local_appended(m, st);
}

/* The importer's record (ImporterOps.message): routed, stored, and its senders started. */
static int manager_import_message(void *userdata, const StoreMessage *msg, const RouteMessage *rm) {
        _cleanup_(route_appended_deinit) RouteAppended appended = ROUTE_APPENDED_NULL;
        Manager *m = userdata;
        int r;

        r = manager_route_message(m, msg, rm, STORE_ORIGIN_INGEST, &appended);
        manager_store_result(m, r);
        for (size_t i = 0; i < appended.n; i++)
                manager_stream_appended(m, route_appended_at(&appended, i));
        return r;
}

static void manager_import_durable(void *userdata) {
        manager_kick_senders(userdata);
}

static const ImporterOps importer_ops = {
        .message = manager_import_message,
        .durable = manager_import_durable,
};

typedef void (*RequestHandler)(Manager *m, const Frame *req, FrameBuilder *reply);

static const struct {
        uint16_t type;
        RequestHandler handler;
} request_table[] = {
        { WIRE_CONTROL_REQUEST, manager_reply_control },
        { WIRE_CONFIG_APPLY_REQUEST, manager_reply_config_apply },
        { WIRE_STORAGE_FOLDER_REQUEST, manager_reply_storage_folder },
};

/*
 * Configuration and the store's folder from the daemons only (twin-sync, the
 * agent); the control commands are all read-only. The broker asks nothing:
 * presence comes on the bus (manager-bus.c).
 */
static unsigned manager_request_access(void *userdata, const Frame *req) {
        switch (req->type) {
        case WIRE_CONTROL_REQUEST:
                return wire_control_access(req, NULL);
        default:
                return PEER_HUB;
        }
}

static int manager_on_request(void *userdata, const Frame *req, FrameBuilder *reply) {
        Manager *m = userdata;

        for (size_t i = 0; i < ELEMENTSOF(request_table); i++)
                if (request_table[i].type == req->type) {
                        request_table[i].handler(m, req, reply);
                        return 0;
                }
        /* Not ours: a peer that speaks another protocol gets disconnected. */
        return -EBADMSG;
}

static int manager_on_sweep(sd_event_source *s, void *userdata) {
        Manager *m = userdata;
        uint64_t ttl_ms = m->ttl_sec * 1000u;
        uint64_t now = realtime_msec();

        int r = store_expire(m->store, now, ttl_ms, SWEEP_SLICE_REMOVALS);
        if (r < 0)
                manager_store_result(m, r);
        if (r > 0)
                /* More to do: continue in the next loop iteration, after pending requests. */
                (void) sd_event_source_set_enabled(m->sweep_source, SD_EVENT_ONESHOT);
        return 0;
}

/* After a failed write RocksDB takes no more writes until reopened (store.h). */
static void manager_store_recover(Manager *m) {
        _cleanup_free_ char *error = NULL;

        if (!store_is_broken(m->store) || m->ticks % STORE_REOPEN_EVERY_TICKS != 0)
                return;
        int r = store_reopen(m->store, &error);
        if (r < 0) {
                log_debug("Reopening the message store failed: %s", error ? error : strerror(-r));
                return;
        }
        log_notice("Message store reopened after a write failure: %" PRIu64 " message(s) stored",
                   store_messages(m->store));
}

static int manager_on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        m->ticks++;
        manager_store_recover(m);
        (void) manager_on_sweep(NULL, m);
        if (m->ticks % COMPACT_EVERY_TICKS == 0)
                store_compact_some(m->store);
        manager_links_tick(m);
        manager_local_tick(m);
        if (m->ticks % STATUS_EVERY_TICKS == 0)
                (void) sd_notifyf(false, "STATUS=Uplink %s, %" PRIu64 " message(s) queued%s",
                                  manager_uplink_string(m), store_messages(m->store),
                                  store_is_broken(m->store) ? ", store failing" : "");

        (void) sd_event_source_set_time_relative(s, TICK_USEC);
        return 0;
}

static int manager_on_sync(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r = store_sync(m->store);

        if (r < 0)
                manager_store_result(m, r);
        (void) sd_event_source_set_time_relative(s, m->config->sync_interval_msec * 1000u);
        return 0;
}

/*
 * Table files the store may keep open: up to 1,000 (a backlog of 10,000,000
 * is about 450), and a quarter of the open-file limit at most, which must
 * also hold an upstream link per identity. Raises that limit first, once,
 * as the store is opened once per start (a move reuses these options).
 */
static int manager_store_open_files(void) {
        uint64_t limit = daemon_raise_fd_limit();
        uint64_t n = limit / 4 < 1000 ? limit / 4 : 1000;

        return n < 64 ? 64 : (int) n;
}

static int manager_open_store(Manager *m) {
        _cleanup_free_ char *error = NULL;
        StoreOptions o = {
                .max_bytes = m->config->max_bytes,
                .overflow = m->config->overflow,
                /*
                 * Every message comes from the ingest log, which the plugin synced
                 * (sync: always) or the importer syncs (periodic); the importer syncs
                 * the store before it deletes a segment.
                 */
                .sync_every_write = false,
                .max_open_files = manager_store_open_files(),
        };
        int r;

        if (mkdir(m->config->storage_dir, 0750) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Failed to create '%s': %m", m->config->storage_dir);
        r = manager_storage_resolve(m);
        if (r < 0)
                return r;
        const char *dir = m->location.dir;
        r = store_open(dir, &o, &m->store, &error);
        if (r == -EUCLEAN)
                return log_error_errno(r, "Message store '%s' is corrupt (%s). Refusing to start; "
                                       "nothing was changed or deleted: move the folder aside or repair it.",
                                       dir, error ? error : "no details");
        if (r == -EBUSY)
                return log_error_errno(r, "Message store '%s' is in use by another process (%s)",
                                       dir, error ? error : "locked");
        if (r < 0)
                return log_error_errno(r, "Failed to open message store '%s': %s", dir, error ? error : "%m");

        log_info("Message store '%s': %" PRIu64 " message(s), %" PRIu64 " bytes of %" PRIu64 " queued",
                 dir, store_messages(m->store), store_bytes(m->store), store_max_bytes(m->store));
        manager_storage_resume(m);
        return 0;
}

int manager_start(Manager *m) {
        _cleanup_free_ char *path = NULL;
        int r;

        r = manager_open_store(m);
        if (r < 0)
                return r;

        r = config_socket_path(m->config, SOCKET_AUTH_CACHE, &path);
        if (r < 0)
                return log_error_errno(r, "Failed to build the auth-cache socket path: %m");
        r = frame_client_init(&m->auth_cache, path);
        if (r < 0)
                return log_error_errno(r, "Out of memory");

        /* Anyone may connect; what each peer may ask is manager_request_access()'s to say. */
        r = frame_server_listen(&m->server, m->event, m->config, SOCKET_HUB_STORE, manager_on_request,
                                manager_request_access, m);
        if (r < 0)
                return r;
        /*
         * The daemons and hubctl wait for each reply (twin-sync on its loop):
         * answer those before upstream link work.
         */
        frame_server_set_priority(m->server, SD_EVENT_PRIORITY_IMPORTANT);

        if (m->config->metrics_port != 0) {
                r = metrics_server_new(&m->metrics, m->event, m, m->config->metrics_address, m->config->metrics_port);
                if (r < 0)
                        return log_error_errno(r, "Failed to serve metrics on '%s' port %u: %m",
                                               m->config->metrics_address, m->config->metrics_port);
        }

        r = sd_event_add_time_relative(m->event, &m->tick_source, CLOCK_MONOTONIC, TICK_USEC, 0, manager_on_tick, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the tick timer: %m");
        (void) sd_event_source_set_description(m->tick_source, "tick");
        (void) sd_event_source_set_enabled(m->tick_source, SD_EVENT_ON);

        r = sd_event_add_defer(m->event, &m->sweep_source, manager_on_sweep, m);
        if (r < 0)
                return log_error_errno(r, "Failed to add the TTL sweep: %m");
        (void) sd_event_source_set_description(m->sweep_source, "ttl-sweep");
        /* Lowest priority: a sweep slice runs only when requests are served. */
        (void) sd_event_source_set_priority(m->sweep_source, SD_EVENT_PRIORITY_IDLE);
        (void) sd_event_source_set_enabled(m->sweep_source, SD_EVENT_ONESHOT);

        if (m->config->sync == SYNC_PERIODIC) {
                /* Invariant 1, power loss: the WAL is fsync'ed at least every sync_interval. */
                r = sd_event_add_time_relative(m->event, &m->sync_source, CLOCK_MONOTONIC,
                                               m->config->sync_interval_msec * 1000u, SYNC_ACCURACY_USEC,
                                               manager_on_sync, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to add the sync timer: %m");
                (void) sd_event_source_set_description(m->sync_source, "wal-sync");
                (void) sd_event_source_set_enabled(m->sync_source, SD_EVENT_ON);
        }

        r = manager_routes_setup(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the routes: %m");
        r = manager_links_setup(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up upstream links: %m");
        r = manager_bus_setup(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the bus client: %m");
        r = manager_local_setup(m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up local endpoints: %m");

        r = importer_new(m->event, m->store, m->config, &importer_ops, m, &m->importer);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the ingest log import: %m");
        log_info("Importing the ingest log from '%s/" INGEST_DIR "'", m->config->storage_dir);
        return 0;
}
