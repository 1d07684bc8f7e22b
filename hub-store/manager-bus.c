/* hub-store on the internal bus: presence and requests for the hub in, cloud traffic out (proto/ipc/bus.h) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hub-store/manager.h"
#include "proto/iothub/iot-identity.h"
#include "proto/runtime/config.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

#define IOTHUB_PREFIX "$iothub/"

static RateLimit bus_ratelimit = RATELIMIT_INIT(10u * 1000000u, 10u);

static void manager_on_upstream_request(Manager *m, const BusMessage *msg) {
        Device *d;
        int r;

        /* Only our daemons publish here; still, a bad request must not reach the hub. */
        if (!msg->client || !msg->target || !iot_identity_is_valid(msg->client) ||
            strncmp(msg->target, IOTHUB_PREFIX, strlen(IOTHUB_PREFIX)) != 0 || strpbrk(msg->target, "+#")) {
                log_ratelimit_warning(&bus_ratelimit, "Upstream request for '%s' on '%s' is malformed, dropped",
                                      msg->client ? msg->client : "n/a", msg->target ? msg->target : "n/a");
                return;
        }
        r = manager_device_get(m, msg->client, &d);
        if (r >= 0)
                r = device_queue_request(d, msg->target, msg->payload, msg->len);
        if (r < 0) {
                log_ratelimit_warning(&bus_ratelimit, "Upstream request of '%s' on '%s' dropped: %s", msg->client,
                                      msg->target, strerror(-r));
                return;
        }
        device_flush_requests(d);
        /* Opens the link if this identity had none. */
        manager_device_changed(m, d);
}

/*
 * The plugin announces each connect and disconnect on the bus, and answers
 * our query after every (re)connect with the identities connected now: a
 * restarted hub-store knows who is there without the broker calling it.
 */
static void manager_on_presence(Manager *m, const BusMessage *msg) {
        bool connected;
        Device *d;
        int r;

        if (bus_presence_parse(msg, &connected) < 0 || !iot_identity_is_valid(msg->client)) {
                log_ratelimit_warning(&bus_ratelimit, "Presence report for '%s' is malformed, dropped",
                                      msg->client ? msg->client : "n/a");
                return;
        }
        r = manager_device_get(m, msg->client, &d);
        if (r < 0) {
                log_ratelimit_warning(&bus_ratelimit, "Presence of '%s' not recorded: %s", msg->client, strerror(-r));
                return;
        }
        if (d->connected != connected)
                log_debug("Device '%s' %s", d->identity, connected ? "connected" : "disconnected");
        d->connected = connected;
        manager_device_changed(m, d);
        manager_local_presence(m, d->identity, connected);
}

/* Link states are announced as they change; a daemon that joined the bus later asks for them. */
static void manager_announce_links_up(Manager *m) {
        const char *up = bus_link_state_to_string(BUS_LINK_UP);

        for (size_t i = 0; i < key_map_size(&m->devices); i++) {
                Device *d = key_map_value_at(&m->devices, i);
                if (d->announced_up)
                        (void) bus_publish(m->bus, BUS_TOPIC_LINK, up, strlen(up), d->identity, NULL, NULL, NULL);
        }
}

static void manager_on_bus_message(Bus *b, const BusMessage *msg, void *userdata) {
        Manager *m = userdata;

        if (strcmp(msg->topic, BUS_TOPIC_UPSTREAM) == 0)
                manager_on_upstream_request(m, msg);
        else if (strcmp(msg->topic, BUS_TOPIC_PRESENCE) == 0)
                manager_on_presence(m, msg);
        else if (strcmp(msg->topic, BUS_TOPIC_LINK_QUERY) == 0)
                manager_announce_links_up(m);
}

static void manager_on_bus_connected(Bus *b, void *userdata) {
        Manager *m = userdata;

        /* After our subscriptions: the answer and every later change reach us in order. */
        if (bus_publish(m->bus, BUS_TOPIC_PRESENCE_QUERY, "", 0, NULL, NULL, NULL, NULL) < 0)
                log_warning("Cannot ask the broker which devices are connected, ignoring");
        manager_local_bus_connected(m);
        /* Daemons that started before us learn which links are up. */
        manager_announce_links_up(m);
}

void manager_bus_link_changed(Manager *m, Device *d, bool up) {
        if (up)
                device_flush_requests(d);
        if (up == d->announced_up)
                return;
        d->announced_up = up;
        if (m->bus) {
                const char *state = bus_link_state_to_string(up ? BUS_LINK_UP : BUS_LINK_DOWN);
                (void) bus_publish(m->bus, BUS_TOPIC_LINK, state, strlen(state), d->identity, NULL, NULL, NULL);
        }
}

void manager_cloud_message(Manager *m, Device *d, const char *topic, const void *payload, size_t len) {
        _cleanup_free_ char *bus_topic = NULL;
        int r;

        if (strncmp(topic, IOTHUB_PREFIX, strlen(IOTHUB_PREFIX)) == 0) {
                if (asprintf(&bus_topic, "%s%s", BUS_PREFIX_CLOUD, topic + strlen(IOTHUB_PREFIX)) < 0) {
                        bus_topic = NULL;
                        r = -ENOMEM;
                } else
                        r = m->bus ? bus_publish(m->bus, bus_topic, payload, len, d->identity, NULL, NULL, NULL)
                                   : -ENOTCONN;
                if (r < 0)
                        log_ratelimit_warning(&bus_ratelimit, "Message from the hub for '%s' on '%s' dropped: %s",
                                              d->identity, topic, strerror(-r));
                return;
        }
        r = manager_c2d_store(m, d, topic, payload, len);
        if (r < 0)
                log_ratelimit_warning(&bus_ratelimit, "Cloud-to-device message for '%s' on '%s' not stored: %s",
                                      d->identity, topic, strerror(-r));
}

int manager_bus_setup(Manager *m) {
        _cleanup_free_ char *socket = NULL;
        static const BusHandlers handlers = {
                .message = manager_on_bus_message,
                .connected = manager_on_bus_connected,
        };
        int r;

        r = config_socket_path(m->config, SOCKET_BROKER, &socket);
        if (r < 0)
                return r;
        r = bus_new(&m->bus, m->event, socket, "hub-store", &handlers, m);
        if (r < 0)
                return r;
        r = bus_add_subscription(m->bus, BUS_TOPIC_UPSTREAM);
        if (r >= 0)
                r = bus_add_subscription(m->bus, BUS_TOPIC_PRESENCE);
        if (r >= 0)
                r = bus_add_subscription(m->bus, BUS_TOPIC_LINK_QUERY);
        if (r < 0)
                return r;
        return bus_start(m->bus);
}
