/* The auth-cache daemon: its loop, scope, store, socket and links */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "auth-cache/manager.h"
#include "auth-cache/scope-store.h"
#include "proto/runtime/daemon.h"
#include "proto/runtime/log.h"
#include "proto/runtime/state-file.h"
#include "proto/util/cleanup.h"

#define REFUSAL_LOG_INTERVAL_USEC (10u * 1000u * 1000u)
#define REFUSAL_LOG_BURST 20u
#define TRIM_AFTER_SYNC_USEC (2u * 1000u * 1000u)

static int on_scope_synced(Scope **scope, void *userdata) {
        Manager *m = userdata;
        return manager_apply_scope(m, scope, realtime_msec());
}

int manager_new(Manager **ret, Config **config) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->refusal_log = RATELIMIT_INIT(REFUSAL_LOG_INTERVAL_USEC, REFUSAL_LOG_BURST);
        m->config = TAKE_PTR(*config);

        r = daemon_event_new(&m->event, &m->signals, NULL, m);
        if (r < 0)
                return r;

        r = scope_new(&m->scope);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        m->trim_source = sd_event_source_disable_unref(m->trim_source);
        m->sync = scope_sync_free(m->sync);
        m->broker = broker_link_free(m->broker);
        m->server = frame_server_free(m->server);
        m->scope = scope_free(m->scope);
        m->trust = x509_trust_free(m->trust);
        m->kv = kv_close(m->kv);
        free(m->store_dir);
        m->event = daemon_event_free(m->event, &m->signals);
        config_free(m->config);
        free(m);
        return NULL;
}

int manager_load_trust(Manager *m) {
        _cleanup_free_ char *error = NULL;
        const char *path = m->config->tls_client_ca_file;
        int r;

        if (!path)
                return 0;
        r = x509_trust_load_file(path, &m->trust, &error);
        if (r < 0) {
                log_error("%s: key 'listeners.tls.client_ca_file': cannot use '%s': %s", m->config->source, path,
                          error ?: strerror(-r));
                return -EINVAL;
        }
        log_info("Devices with certificateAuthority authentication are checked against '%s'", path);
        return 0;
}

int manager_open_store(Manager *m) {
        _cleanup_free_ char *error = NULL;
        _cleanup_(scope_freep) Scope *scope = NULL;
        uint64_t last_sync = 0;
        int r;

        r = state_dir_prepare(m->config->storage_dir, "scope", &m->store_dir);
        if (r < 0)
                return r;

        /* Rare, small writes: make each sync durable at once. */
        KvOptions options = {
                .sync_every_write = true,
                .write_buffer_bytes = 1024 * 1024,
        };
        r = kv_open(m->store_dir, &options, &m->kv, &error);
        if (r == -EUCLEAN)
                return log_error_errno(r, "The device scope store '%s' is corrupt (%s); refusing to start. "
                                       "The data was left in place: repair or remove the folder.",
                                       m->store_dir, error ? error : "no details");
        if (r < 0 && error)
                return log_error_errno(r, "Cannot open the device scope store '%s': %s", m->store_dir, error);
        if (r < 0)
                return log_error_errno(r, "Cannot open the device scope store '%s': %m", m->store_dir);

        r = scope_store_load(m->kv, &scope, &last_sync);
        if (r == -EUCLEAN)
                return log_error_errno(r, "The device scope store '%s' holds a malformed record; refusing to start. "
                                       "The data was left in place: repair or remove the folder.", m->store_dir);
        if (r < 0)
                return log_error_errno(r, "Cannot read the device scope store '%s': %m", m->store_dir);

        scope_free(m->scope);
        m->scope = TAKE_PTR(scope);
        m->last_sync_ms = last_sync;
        if (last_sync > 0)
                log_info("Loaded the device scope: %zu identities, last synced at %llu ms",
                         m->scope->n_items, (unsigned long long) last_sync);
        else
                log_info("No device scope synced yet: only after the first sync can devices authenticate");
        return 0;
}

int manager_listen(Manager *m) {
        /* Anyone may connect; what each peer may ask is manager_request_access()'s to say. */
        return frame_server_listen(&m->server, m->event, m->config, SOCKET_AUTH_CACHE, manager_handle_request,
                                   manager_request_access, m);
}

int manager_start(Manager *m) {
        _cleanup_free_ char *broker_path = NULL;
        int r;

        r = config_socket_path(m->config, SOCKET_BROKER, &broker_path);
        if (r < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = broker_link_new(&m->broker, m->event, broker_path);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the broker link: %m");

        r = scope_sync_new(&m->sync, m->event, m->config, on_scope_synced, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the scope sync: %m");
        (void) scope_sync_start(m->sync);
        return 0;
}

typedef struct KickContext {
        Manager *manager;
        unsigned removed, disabled, changed, added;
} KickContext;

/* Who loses access: removed identities, and identities that went from enabled to disabled. */
static int kick_changed(const Identity *old_id, const Identity *new_id, void *userdata) {
        KickContext *c = userdata;
        Manager *m = c->manager;
        int r;

        if (!old_id)
                c->added++;
        else if (!new_id)
                c->removed++;
        else if (old_id->enabled && !new_id->enabled)
                c->disabled++;
        else
                c->changed++;

        /* IoT Hub closes the connections made with a key that was regenerated; we also close those
         * that may use a certificate no longer accepted. A new connection is checked again. */
        bool was_enabled = old_id && old_id->enabled && new_id && new_id->enabled;
        bool keys_revoked = was_enabled && identity_keys_revoked(old_id, new_id);
        bool certificate_revoked = was_enabled && identity_certificate_revoked(old_id, new_id);
        bool revoked = keys_revoked || certificate_revoked;
        if (new_id && new_id->enabled && !revoked) {
                broker_link_unkick(m->broker, new_id->name);
                return 0;
        }
        if (!old_id || !old_id->enabled)
                return 0;
        log_notice("Identity '%s' was %s: disconnecting it", old_id->name,
                   keys_revoked ? "given new keys" : certificate_revoked ? "given new certificate thumbprints" :
                   new_id ? "disabled" : "removed");
        r = m->broker ? broker_link_kick(m->broker, old_id->name) : -ENOTCONN;
        if (r < 0)
                log_warning_errno(r, "Cannot queue the kick of '%s', ignoring: %m", old_id->name);
        return 0;
}

static int on_trim(sd_event_source *s, uint64_t usec, void *userdata) {
        daemon_trim_memory();
        return 0;
}

/* The sync's pages (HTTP bodies, JSON, the old scope) are freed once its request is done with: trim after that. */
static void manager_schedule_trim(Manager *m) {
        if (m->trim_source) {
                (void) sd_event_source_set_time_relative(m->trim_source, TRIM_AFTER_SYNC_USEC);
                (void) sd_event_source_set_enabled(m->trim_source, SD_EVENT_ONESHOT);
                return;
        }
        if (sd_event_add_time_relative(m->event, &m->trim_source, CLOCK_MONOTONIC, TRIM_AFTER_SYNC_USEC, 0, on_trim,
                                       m) >= 0)
                (void) sd_event_source_set_description(m->trim_source, "malloc-trim");
}

int manager_apply_scope(Manager *m, Scope **scope, uint64_t sync_ms) {
        KickContext c = { .manager = m };
        int r;

        r = scope_store_apply(m->kv, m->scope, *scope, sync_ms);
        if (r < 0)
                return log_error_errno(r, "Failed to write the device scope to '%s', keeping the old one: %m",
                                       m->store_dir);

        (void) scope_diff(m->scope, *scope, kick_changed, &c);
        if (c.added || c.removed || c.disabled || c.changed)
                log_notice("Device scope updated: %u added, %u removed, %u disabled, %u changed",
                           c.added, c.removed, c.disabled, c.changed);

        scope_free(m->scope);
        m->scope = TAKE_PTR(*scope);
        m->last_sync_ms = sync_ms;
        /*
         * What the sync wrote would sit in RocksDB's memtable until it fills,
         * which a settled scope never does: flushed, it is on disk only.
         */
        if (c.added || c.removed || c.disabled || c.changed)
                (void) kv_flush(m->kv);
        manager_schedule_trim(m);
        (void) sd_notifyf(false, "STATUS=Serving %zu identities (synced)", m->scope->n_items);
        return 0;
}
