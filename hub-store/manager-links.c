/* The Manager's upstream links: who needs one, the connect-rate limit, the uplink state */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hub-store/link-tls.h"
#include "hub-store/manager.h"
#include "proto/iothub/iot-identity.h"
#include "proto/iothub/sas-token.h"
#include "proto/ipc/auth-client.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/util/array.h"
#include "proto/util/cleanup.h"

/*
 * A hub throttles connection storms: after an outage a hundred identities
 * reconnect at most upstream.connect_rate per second (a burst of as many),
 * in the order they asked.
 */
/*
 * While the uplink is down one link at a time retries this often, whatever
 * its own backoff says; when it gets through, every link retries at once
 * (rate-limited). So a long outage costs two connects a second, and the
 * first stored message leaves within about a second of the hub returning.
 */
#define PROBE_INTERVAL_USEC 500000u
/* auth-cache is a local socket: it answers fast or not at all. */
#define AUTH_CACHE_TIMEOUT_USEC 200000u
/* After auth-cache failed to answer, key lookups fail at once for this long. */
#define AUTH_CACHE_RETRY_USEC 1000000u
#define KEEPALIVE_SEC 60u
#define TIMER_ACCURACY_USEC 1000u

Device *manager_device_find(Manager *m, const char *identity) {
        return key_map_get(&m->devices, identity, strlen(identity));
}

int manager_device_get(Manager *m, const char *identity, Device **ret) {
        Device *d = manager_device_find(m, identity);
        int r;

        if (!d) {
                r = device_new(&d, identity);
                if (r < 0)
                        return r;
                r = key_map_put(&m->devices, d->identity, strlen(d->identity), d);
                if (r < 0) {
                        device_free(d);
                        return r;
                }
        }
        *ret = d;
        return 0;
}

static void connect_queue_remove(Manager *m, Link *l) {
        for (size_t i = 0; i < m->n_connect_queue; i++)
                if (m->connect_queue[i] == l) {
                        memmove(m->connect_queue + i, m->connect_queue + i + 1,
                                (m->n_connect_queue - i - 1) * sizeof(*m->connect_queue));
                        m->n_connect_queue--;
                        return;
                }
}

static void manager_arm_connect(Manager *m, uint64_t usec) {
        (void) sd_event_source_set_time_relative(m->connect_source, usec);
        (void) sd_event_source_set_enabled(m->connect_source, SD_EVENT_ONESHOT);
}

static int manager_on_connect_slot(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        uint64_t now = now_usec();

        while (m->n_connect_queue > 0) {
                if (!token_bucket_take(&m->connect_bucket, now)) {
                        manager_arm_connect(m, token_bucket_wait_usec(&m->connect_bucket, now));
                        return 0;
                }
                Link *l = m->connect_queue[0];
                connect_queue_remove(m, l);
                link_connect(l);
        }
        return 0;
}

static void link_want_connect(void *userdata, Link *l) {
        Manager *m = userdata;

        for (size_t i = 0; i < m->n_connect_queue; i++)
                if (m->connect_queue[i] == l)
                        return;
        if (ARRAY_RESERVE_ONE(m->connect_queue, m->connect_queue_cap, m->n_connect_queue) < 0) {
                /* The link stays WAITING; the next tick retries it. */
                log_warning("Out of memory queueing a connect of '%s'", link_identity(l));
                return;
        }
        m->connect_queue[m->n_connect_queue++] = l;
        /* Always from the event loop, never from inside the caller. */
        manager_arm_connect(m, 0);
}

/*
 * Fetches the identity's key from auth-cache. -ENOENT unknown identity.
 * For an X.509 child there is no key: *ret_signer (else NULL) then names
 * the identity whose key signs on its behalf, our own $edgeHub.
 */
static int manager_fetch_key(Manager *m, const char *identity, char **ret, char **ret_signer) {
        uint64_t now = now_usec();
        int r, status;

        if (now < m->auth_cache_down_until)
                return -EAGAIN;

        r = auth_client_key(&m->auth_cache, AUTH_CACHE_TIMEOUT_USEC, identity, &status, ret, ret_signer);
        if (r < 0) {
                m->auth_cache_down_until = now + AUTH_CACHE_RETRY_USEC;
                return r;
        }
        return status;
}

static int link_mint_password(void *userdata, Link *l, uint64_t expiry, char **ret) {
        Manager *m = userdata;
        _cleanup_free_ char *device = NULL, *module = NULL, *resource = NULL, *edgehub = NULL, *signer = NULL;
        _cleanup_(auth_key_freep) char *key = NULL;
        const char *identity = link_identity(l);
        int r;

        r = iot_identity_split(identity, &device, &module);
        if (r < 0)
                return r;
        if (asprintf(&resource, module ? "%s/devices/%s/modules/%s" : "%s/devices/%s",
                     m->config->hub_hostname, device, module) < 0) {
                resource = NULL;
                return -ENOMEM;
        }

        /* The edge's own $edgeHub signs with the key from the configuration. */
        if (config_edge_identity(m->config, "$edgeHub", &edgehub) < 0)
                return -ENOMEM;
        if (strcmp(identity, edgehub) == 0 && m->config->edgehub_key) {
                key = strdup(m->config->edgehub_key);
                if (!key)
                        return -ENOMEM;
        } else {
                r = manager_fetch_key(m, identity, &key, &signer);
                if (r < 0)
                        return r;
        }
        /*
         * An X.509 child: we connect on its behalf as edgeHub does, with its
         * client id and username and a token of our $edgeHub module.
         */
        if (signer) {
                if (strcmp(signer, edgehub) != 0 || !m->config->edgehub_key)
                        return -EBADMSG;
                key = strdup(m->config->edgehub_key);
                if (!key)
                        return -ENOMEM;
                free(resource);
                if (asprintf(&resource, "%s/devices/%s/modules/$edgeHub", m->config->hub_hostname,
                             m->config->edge_device_id) < 0) {
                        resource = NULL;
                        return -ENOMEM;
                }
        }

        return sas_token_mint(resource, key, expiry, ret);
}

static void manager_scope_sync(Manager *m) {
        _cleanup_(frame_builder_deinit) FrameBuilder req = FRAME_BUILDER_NULL;
        Frame reply;
        int r;

        frame_builder_init(&req, WIRE_CONTROL_REQUEST);
        frame_builder_add_string(&req, WIRE_COMMAND, "sync");
        r = frame_client_call(&m->auth_cache, &req, AUTH_CACHE_TIMEOUT_USEC, &reply);
        if (r >= 0)
                r = wire_reply_status(&reply);
        if (r < 0)
                log_warning_errno(r, "Failed to ask auth-cache to refresh the device scope, ignoring: %m");
        else
                log_info("Asked auth-cache to refresh the device scope");
}

static void manager_arm_probe(Manager *m) {
        uint64_t usec = PROBE_INTERVAL_USEC * 4 / 5 + backoff_random() % (PROBE_INTERVAL_USEC * 2 / 5);

        (void) sd_event_source_set_time_relative(m->probe_source, usec);
        (void) sd_event_source_set_enabled(m->probe_source, SD_EVENT_ONESHOT);
}

static void manager_uplink_reachable(Manager *m) {
        UplinkState old = m->uplink;

        m->uplink = UPLINK_UP;
        (void) sd_event_source_set_enabled(m->probe_source, SD_EVENT_OFF);
        if (old != UPLINK_DOWN)
                return;

        uint64_t now = realtime_msec();
        log_notice("Uplink restored after %" PRIu64 " s offline",
                   now > m->offline_since_ms ? (now - m->offline_since_ms) / 1000 : 0);
        /* DESIGN.md: on reconnect the scope is refreshed too. */
        manager_scope_sync(m);
        /* Links that gave up on the network need not wait out their backoff now. */
        for (size_t i = 0; i < key_map_size(&m->devices); i++) {
                Device *d = key_map_value_at(&m->devices, i);
                if (d->link && link_state(d->link) == LINK_BACKOFF && link_last_failure(d->link) == LINK_FAILURE_NETWORK)
                        link_retry_now(d->link);
        }
}

static void manager_uplink_unreachable(Manager *m) {
        if (m->uplink == UPLINK_DOWN)
                return;
        m->uplink = UPLINK_DOWN;
        m->offline_since_ms = realtime_msec();
        m->offline_count++;
        log_notice("Uplink down: cannot reach %s:%u; storing messages (%" PRIu64 " queued)",
                   m->link_settings.host, m->link_settings.port, store_messages(m->store));
        manager_arm_probe(m);
}

static void link_state_changed(void *userdata, Link *l, LinkState old, LinkFailure failure) {
        Manager *m = userdata;
        LinkState state = link_state(l);

        if (old == LINK_WAITING && state != LINK_WAITING)
                connect_queue_remove(m, l);

        Device *d = manager_device_find(m, link_identity(l));
        if (d && (state == LINK_UP || old == LINK_UP))
                manager_bus_link_changed(m, d, state == LINK_UP);

        if (state == LINK_UP)
                manager_uplink_reachable(m);
        else if (state == LINK_BACKOFF) {
                if (failure == LINK_FAILURE_REFUSED)
                        manager_uplink_reachable(m); /* the hub answered: the network is there */
                else if (failure == LINK_FAILURE_NETWORK && manager_links_up(m) == 0)
                        manager_uplink_unreachable(m);
        }
}

/* Is any link trying right now? Then that attempt is the probe. */
static bool manager_attempt_under_way(Manager *m) {
        for (size_t i = 0; i < key_map_size(&m->devices); i++) {
                Device *d = key_map_value_at(&m->devices, i);
                LinkState st = d->link ? link_state(d->link) : LINK_CLOSED;
                if (st == LINK_WAITING || st == LINK_CONNECTING)
                        return true;
        }
        return false;
}

static int manager_on_probe(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        size_t n = key_map_size(&m->devices);

        if (m->uplink != UPLINK_DOWN)
                return 0;
        for (size_t k = 0; k < n && !manager_attempt_under_way(m); k++) {
                size_t i = (m->probe_cursor + k) % n;
                Device *d = key_map_value_at(&m->devices, i);
                if (d->link && link_state(d->link) == LINK_BACKOFF && link_last_failure(d->link) == LINK_FAILURE_NETWORK) {
                        m->probe_cursor = i + 1;
                        link_retry_now(d->link);
                        break;
                }
        }
        manager_arm_probe(m);
        return 0;
}

static void link_message(void *userdata, Link *l, const char *topic, const void *payload, size_t len) {
        Manager *m = userdata;
        Device *d = manager_device_find(m, link_identity(l));

        if (d)
                manager_cloud_message(m, d, topic, payload, len);
}

static const LinkOps link_ops = {
        .mint_password = link_mint_password,
        .want_connect = link_want_connect,
        .state_changed = link_state_changed,
        .message = link_message,
};

static void manager_close_link(Manager *m, Device *d) {
        if (!d->link)
                return;
        if (link_state(d->link) == LINK_UP)
                log_info("Closing idle upstream link of '%s'", d->identity);
        connect_queue_remove(m, d->link);
        d->link = link_free(d->link);
        d->unneeded_since = 0;
}

void manager_device_changed(Manager *m, Device *d) {
        if (!device_needs_link(d)) {
                if (d->link && d->unneeded_since == 0)
                        d->unneeded_since = now_usec();
                return;
        }
        d->unneeded_since = 0;
        if (!d->link) {
                int r = device_open_link(d, m->event, &m->link_settings, &link_ops, m, m->store);
                if (r < 0 && !d->link_setup_failed)
                        log_warning_errno(r, "Failed to set up the upstream link of '%s', retrying: %m", d->identity);
                d->link_setup_failed = r < 0;
                return;
        }
        if (link_state(d->link) == LINK_CLOSED)
                link_start(d->link);
        else
                link_kick(d->link);
}

void manager_upstream_appended(Manager *m, StoreStream *st) {
        Device *d;

        if (manager_device_get(m, st->identity, &d) < 0)
                return; /* out of memory: stored all the same, sent after a restart (manager_links_setup()) */
        device_add_stream(d, st);
        manager_device_changed(m, d);
}

void manager_links_tick(Manager *m) {
        uint64_t now = now_usec();
        uint64_t idle_usec = m->config->idle_timeout_sec * 1000000u;

        for (size_t i = 0; i < key_map_size(&m->devices); i++) {
                Device *d = key_map_value_at(&m->devices, i);

                size_t expired = device_expire_requests(d, now);
                if (expired > 0)
                        log_info("Dropped %zu request(s) of '%s' for the hub: its link did not come up in time",
                                 expired, d->identity);
                if (device_needs_link(d)) {
                        if (!d->link || link_state(d->link) == LINK_CLOSED)
                                manager_device_changed(m, d);
                        else {
                                d->unneeded_since = 0;
                                link_tick(d->link);
                        }
                        continue;
                }
                if (!d->link)
                        continue;
                if (d->unneeded_since == 0)
                        d->unneeded_since = now;
                /* A link that is not up has no reason to keep trying; an up one waits out idle_timeout. */
                if (link_state(d->link) != LINK_UP || now - d->unneeded_since >= idle_usec)
                        manager_close_link(m, d);
                else
                        link_tick(d->link);
        }
}

unsigned manager_links_up(Manager *m) {
        unsigned n = 0;

        for (size_t i = 0; i < key_map_size(&m->devices); i++) {
                Device *d = key_map_value_at(&m->devices, i);
                if (d->link && link_state(d->link) == LINK_UP)
                        n++;
        }
        return n;
}

unsigned manager_links_total(Manager *m) {
        unsigned n = 0;

        for (size_t i = 0; i < key_map_size(&m->devices); i++) {
                Device *d = key_map_value_at(&m->devices, i);
                if (d->link && link_state(d->link) != LINK_CLOSED)
                        n++;
        }
        return n;
}

const char *manager_uplink_string(Manager *m) {
        if (manager_links_total(m) == 0)
                return "idle";
        return m->uplink == UPLINK_UP ? "up" : "down";
}

int manager_links_setup(Manager *m) {
        int r;

        m->link_settings = (LinkSettings) {
                .host = m->config->upstream_host ? m->config->upstream_host : m->config->hub_hostname,
                .port = m->config->upstream_mqtt_port,
                .ca_file = m->config->upstream_ca_file,
                .hub_hostname = m->config->hub_hostname,
                .token_ttl_sec = m->config->token_ttl_sec,
                .message_ttl_ms = m->config->ttl_sec * 1000u,
                .keepalive_sec = KEEPALIVE_SEC,
        };
        r = link_tls_context_new(m->link_settings.ca_file, m->link_settings.host, &m->link_settings.ssl_ctx);
        if (r < 0)
                return r;
        token_bucket_init(&m->connect_bucket, m->config->connect_rate, m->config->connect_rate);

        /* 1 ms accuracy: sd-event's default (250 ms) would stretch the rate limit and the probe. */
        r = sd_event_add_time_relative(m->event, &m->connect_source, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_USEC,
                                       manager_on_connect_slot, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(m->connect_source, SD_EVENT_OFF);
        (void) sd_event_source_set_description(m->connect_source, "connect-slot");
        r = sd_event_add_time_relative(m->event, &m->probe_source, CLOCK_MONOTONIC, PROBE_INTERVAL_USEC, TIMER_ACCURACY_USEC,
                                       manager_on_probe, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(m->probe_source, SD_EVENT_OFF);
        (void) sd_event_source_set_description(m->probe_source, "uplink-probe");

        /*
         * The edge's own modules stay connected, as edgeHub and edgeAgent do: a deployment or a
         * route change in their desired properties reaches us only over their link, and a lazily
         * opened one depended on a daemon's first request reaching us, which a start-up race
         * could lose (the $edgeHub twin then stayed unread until a restart).
         */
        static const char *const own_modules[] = { "$edgeHub", "$edgeAgent" };
        for (size_t i = 0; i < ELEMENTSOF(own_modules); i++) {
                _cleanup_free_ char *identity = NULL;
                Device *d;
                if (config_edge_identity(m->config, own_modules[i], &identity) < 0)
                        return -ENOMEM;
                r = manager_device_get(m, identity, &d);
                if (r < 0)
                        return r;
                d->always_linked = true;
                manager_device_changed(m, d);
        }

        /* Whatever survived the last run goes out first. */
        for (size_t i = 0; i < store_n_streams(m->store); i++) {
                StoreStream *st = store_stream_at(m->store, i);
                Device *d;
                if (st->messages == 0 || strcmp(st->endpoint, STORE_ENDPOINT_UPSTREAM) != 0)
                        continue;
                r = manager_device_get(m, st->identity, &d);
                if (r < 0)
                        return r;
                device_add_stream(d, st);
                manager_device_changed(m, d);
        }
        return 0;
}

void manager_links_free(Manager *m) {
        for (size_t i = 0; i < key_map_size(&m->devices); i++)
                device_free(key_map_value_at(&m->devices, i));
        key_map_deinit(&m->devices);
        free(m->connect_queue);
        m->connect_queue = NULL;
        m->n_connect_queue = m->connect_queue_cap = 0;
        m->connect_source = sd_event_source_disable_unref(m->connect_source);
        m->probe_source = sd_event_source_disable_unref(m->probe_source);
        /* Each link's client held a reference of its own, released with it above. */
        SSL_CTX_free(m->link_settings.ssl_ctx);
        m->link_settings.ssl_ctx = NULL;
}
