/* The twin-sync daemon: its loop, store, bus and control socket */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "proto/runtime/log.h"
#include "proto/runtime/state-file.h"
#include "proto/util/cleanup.h"
#include "twin-sync/manager.h"
#include "twin-sync/twin-store.h"

#define BAD_INPUT_LOG_INTERVAL_USEC (10u * 1000u * 1000u)
#define BAD_INPUT_LOG_BURST 20u

int manager_new(Manager **ret, Config **config) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->bad_input_log = RATELIMIT_INIT(BAD_INPUT_LOG_INTERVAL_USEC, BAD_INPUT_LOG_BURST);
        m->applied_version = -1;
        m->config = TAKE_PTR(*config);
        if (config_edge_identity(m->config, "$edgeHub", &m->edgehub_identity) < 0)
                return -ENOMEM;
        bus_request_ids_init(&m->rids, "ts");

        r = daemon_event_new(&m->event, &m->signals, NULL, m);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < key_map_size(&m->twins); i++) {
                Twin *t = key_map_value_at(&m->twins, i);
                if (m->bus)
                        bus_forget(m->bus, t);
                twin_free(t);
        }
        key_map_deinit(&m->twins);
        m->bus = bus_free(m->bus);
        m->server = frame_server_free(m->server);
        if (m->kv) {
                (void) kv_sync_wal(m->kv);
                m->kv = kv_close(m->kv);
        }
        free(m->store_dir);
        free(m->hub_store_socket);
        free(m->edgehub_identity);
        m->clients_defer = sd_event_source_disable_unref(m->clients_defer);
        m->probe_timer = sd_event_source_disable_unref(m->probe_timer);
        m->sync_timer = sd_event_source_disable_unref(m->sync_timer);
        m->event = daemon_event_free(m->event, &m->signals);
        config_free(m->config);
        free(m);
        return NULL;
}

static int add_loaded(Twin **t, void *userdata) {
        Manager *m = userdata;
        (*t)->manager = m;
        int r = key_map_put(&m->twins, (*t)->identity, strlen((*t)->identity), *t);
        if (r < 0)
                return r;
        *t = NULL;
        return 0;
}

static int on_sync_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r = kv_sync_wal(m->kv);
        if (r < 0)
                log_warning_errno(r, "Cannot sync the twin store's write-ahead log, retrying: %m");
        (void) sd_event_source_set_time_relative(s, m->config->sync_interval_msec * 1000u);
        return 0;
}

int manager_open_store(Manager *m) {
        _cleanup_free_ char *error = NULL;
        uint64_t pending = 0;
        int r;

        r = state_dir_prepare(m->config->storage_dir, "twins", &m->store_dir);
        if (r < 0)
                return r;

        KvOptions options = {
                .sync_every_write = m->config->sync == SYNC_ALWAYS,
                .write_buffer_bytes = 1024 * 1024,
        };
        r = kv_open(m->store_dir, &options, &m->kv, &error);
        if (r == -EUCLEAN)
                return log_error_errno(r, "The twin store '%s' is corrupt (%s); refusing to start. "
                                       "The data was left in place: repair or remove the folder.",
                                       m->store_dir, error ? error : "no details");
        if (r < 0)
                return log_error_errno(r, "Cannot open the twin store '%s': %s", m->store_dir, error ? error : "");

        r = twin_store_load(m->kv, add_loaded, m);
        if (r == -EUCLEAN)
                return log_error_errno(r, "The twin store '%s' holds a malformed record; refusing to start. "
                                       "The data was left in place: repair or remove the folder.", m->store_dir);
        if (r < 0)
                return log_error_errno(r, "Cannot read the twin store '%s': %m", m->store_dir);

        for (size_t i = 0; i < key_map_size(&m->twins); i++)
                pending += ((Twin *) key_map_value_at(&m->twins, i))->n_pending;
        log_info("Loaded %zu twins, %llu reported patches waiting to go upstream", key_map_size(&m->twins),
                 (unsigned long long) pending);

        if (m->config->sync == SYNC_PERIODIC) {
                r = sd_event_add_time_relative(m->event, &m->sync_timer, CLOCK_MONOTONIC,
                                               m->config->sync_interval_msec * 1000u, 0, on_sync_timer, m);
                if (r < 0)
                        return log_error_errno(r, "Cannot arm the sync timer: %m");
                (void) sd_event_source_set_enabled(m->sync_timer, SD_EVENT_ON);
        }
        return 0;
}

int manager_listen(Manager *m) {
        /* Anyone may connect; every command is read-only, for the read group. */
        return frame_server_listen(&m->server, m->event, m->config, SOCKET_TWIN_SYNC, manager_handle_request,
                                   manager_request_access, m);
}

static int on_probe(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        /*
         * Asking for the $edgeHub twin makes hub-store try that link; its "up" ends the outage for us.
         * Asked until that link is up, not only while every link is down: the request made when we
         * joined the bus is lost if hub-store joined after us, and another identity's link (the
         * agent's) coming up first would otherwise leave the hub without its configuration.
         */
        Twin *t = manager_twin(m, m->edgehub_identity);
        if (t && t->link != BUS_LINK_UP)
                manager_fetch(m, t);
        (void) sd_event_source_set_time_relative(s, TWIN_PROBE_INTERVAL_USEC);
        return 0;
}

int manager_start(Manager *m) {
        _cleanup_free_ char *broker = NULL;
        static const char *const filters[] = {
                BUS_PREFIX_DEVICE "twin/#", BUS_PREFIX_CLOUD "twin/#", BUS_TOPIC_LINK, BUS_TOPIC_PRESENCE,
                BUS_TOPIC_SUBSCRIBE,
        };
        static const BusHandlers handlers = {
                .message = manager_on_bus_message,
                .connected = manager_on_bus_connected,
        };
        int r;

        if (config_socket_path(m->config, SOCKET_BROKER, &broker) < 0 ||
            config_socket_path(m->config, SOCKET_HUB_STORE, &m->hub_store_socket) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = bus_new(&m->bus, m->event, broker, "twin-sync", &handlers, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the bus client: %m");
        for (size_t i = 0; i < ELEMENTSOF(filters); i++) {
                r = bus_add_subscription(m->bus, filters[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to subscribe to '%s': %m", filters[i]);
        }
        r = bus_start(m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to start the bus client: %m");

        r = sd_event_add_time_relative(m->event, &m->probe_timer, CLOCK_MONOTONIC, TWIN_PROBE_INTERVAL_USEC, 0,
                                       on_probe, m);
        if (r < 0)
                return log_error_errno(r, "Cannot arm the probe timer: %m");
        (void) sd_event_source_set_enabled(m->probe_timer, SD_EVENT_ON);
        return 0;
}

Twin *manager_twin(Manager *m, const char *identity) {
        Twin *t = key_map_get(&m->twins, identity, strlen(identity));
        if (t)
                return t;
        if (twin_new(&t, identity) < 0)
                return NULL;
        t->manager = m;
        if (key_map_put(&m->twins, t->identity, strlen(t->identity), t) < 0)
                return twin_free(t);
        return t;
}

int manager_save(Manager *m, Twin *t, const void *patch, size_t patch_len) {
        int r = twin_store_save(m->kv, t, patch, patch_len);
        if (r < 0)
                log_error_errno(r, "Cannot write the twin of '%s' to '%s': %m", t->identity, m->store_dir);
        return r;
}
