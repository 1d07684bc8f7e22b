/* What arrives on the internal bus: device twin requests, the cloud's answers, link and presence changes */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"
#include "twin-sync/manager.h"
#include "twin-sync/uplink-query.h"

static bool has_prefix(const char *s, const char *prefix, const char **ret_rest) {
        size_t n = strlen(prefix);
        if (strncmp(s, prefix, n) != 0)
                return false;
        *ret_rest = s + n;
        return true;
}

static void on_device(Manager *m, const BusMessage *msg, const char *rest) {
        TwinTopic tt = TWIN_TOPIC_NULL;
        int r;

        r = twin_topic_parse(rest, &tt);
        if (r < 0 || (tt.kind != TWIN_TOPIC_GET && tt.kind != TWIN_TOPIC_REPORTED)) {
                log_ratelimit_warning(&m->bad_input_log, "Ignoring a twin request from '%s' on an unknown topic",
                                      msg->client);
                twin_topic_deinit(&tt);
                return;
        }
        if (!tt.rid) {
                /* IoT Hub matches answers by $rid; without one nobody could use an answer. */
                log_ratelimit_warning(&m->bad_input_log, "Ignoring a twin %s from '%s' without $rid",
                                      tt.kind == TWIN_TOPIC_GET ? "GET" : "reported patch", msg->client);
                twin_topic_deinit(&tt);
                return;
        }
        Twin *t = manager_twin(m, msg->client);
        if (!t) {
                log_error("Out of memory: dropping a twin request from '%s'", msg->client);
                twin_topic_deinit(&tt);
                return;
        }
        if (tt.kind == TWIN_TOPIC_GET)
                manager_device_get(m, t, tt.rid);
        else
                manager_device_reported(m, t, tt.rid, msg->payload, msg->len);
        twin_topic_deinit(&tt);
}

static void on_cloud(Manager *m, const BusMessage *msg, const char *rest) {
        TwinTopic tt = TWIN_TOPIC_NULL;

        if (twin_topic_parse(rest, &tt) < 0 || (tt.kind != TWIN_TOPIC_RESPONSE && tt.kind != TWIN_TOPIC_DESIRED)) {
                log_ratelimit_warning(&m->bad_input_log, "Ignoring a cloud twin message for '%s' on an unknown topic",
                                      msg->client);
                twin_topic_deinit(&tt);
                return;
        }
        Twin *t = manager_twin(m, msg->client);
        if (t) {
                if (tt.kind == TWIN_TOPIC_RESPONSE)
                        manager_cloud_response(m, t, &tt, msg->payload, msg->len);
                else
                        manager_cloud_desired(m, t, tt.version, msg->payload, msg->len);
        }
        twin_topic_deinit(&tt);
}

static void on_presence(Manager *m, const BusMessage *msg) {
        bool connected;

        if (bus_presence_parse(msg, &connected) < 0)
                return;
        Twin *t = manager_twin(m, msg->client);
        if (!t)
                return;
        t->heard_presence = true;
        t->connected = connected;
        if (!connected)
                t->subscribed = false;
        manager_edgehub_clients_changed(m);
}

/* Does the MQTT filter (payload, not NUL-terminated) match the desired-patch topics? */
static bool filter_covers_desired(const char *f, size_t len) {
        static const char topic[] = "$iothub/twin/PATCH/properties/desired/?$version=1";
        const char *t = topic, *end = f + len;

        while (f < end) {
                const char *fs = memchr(f, '/', (size_t) (end - f));
                size_t flen = fs ? (size_t) (fs - f) : (size_t) (end - f);
                const char *ts = strchr(t, '/');
                size_t tlen = ts ? (size_t) (ts - t) : strlen(t);

                if (flen == 1 && *f == '#')
                        return true;
                if (!(flen == 1 && *f == '+') && (flen != tlen || memcmp(f, t, flen) != 0))
                        return false;
                if (!fs)
                        return !ts;
                if (!ts)
                        /* "a/b/#" also matches "a/b" */
                        return (size_t) (end - fs) == 2 && fs[1] == '#';
                f = fs + 1;
                t = ts + 1;
        }
        return false;
}

static void on_subscribe(Manager *m, const BusMessage *msg) {
        if (!filter_covers_desired(msg->payload, msg->len))
                return;
        Twin *t = manager_twin(m, msg->client);
        if (!t)
                return;
        t->heard_presence = true;
        t->connected = true;
        t->subscribed = true;
        /* Online: fetch first, so the device gets the cloud's current state in one patch, not two. */
        if (manager_online(m, t))
                manager_fetch(m, t);
        else
                manager_deliver(m, t);
}

static void on_link(Manager *m, const BusMessage *msg) {
        Twin *t = manager_twin(m, msg->client);
        if (!t)
                return;
        BusLinkState state = bus_link_state_from_payload(msg->payload, msg->len);
        if (state != BUS_LINK_UNKNOWN)
                manager_link_changed(m, t, state == BUS_LINK_UP);
}

void manager_on_bus_message(Bus *b, const BusMessage *msg, void *userdata) {
        Manager *m = userdata;
        const char *rest;

        /* Every message of ours names its identity; the plugin and hub-store set it. */
        if (!msg->client || !*msg->client) {
                log_ratelimit_warning(&m->bad_input_log, "Ignoring a bus message on '%s' without a client", msg->topic);
                return;
        }
        if (has_prefix(msg->topic, BUS_PREFIX_DEVICE, &rest))
                on_device(m, msg, rest);
        else if (has_prefix(msg->topic, BUS_PREFIX_CLOUD, &rest))
                on_cloud(m, msg, rest);
        else if (strcmp(msg->topic, BUS_TOPIC_PRESENCE) == 0)
                on_presence(m, msg);
        else if (strcmp(msg->topic, BUS_TOPIC_SUBSCRIBE) == 0)
                on_subscribe(m, msg);
        else if (strcmp(msg->topic, BUS_TOPIC_LINK) == 0)
                on_link(m, msg);
}

/*
 * Without this a twin-sync restarted while the uplink is cut hears of no link
 * (hub-store announces changes only) and makes the first GETs wait for the
 * cloud. Asked after our subscriptions went out, so a link that comes up
 * later is announced to us; a bounded wait on the loop, once per bus connect.
 */
static void learn_uplink(Manager *m) {
        UplinkKnown u;
        int r;

        if (m->heard_link)
                return;
        r = uplink_query(m->hub_store_socket, UPLINK_QUERY_TIMEOUT_USEC, &u);
        if (r < 0) {
                log_debug_errno(r, "Cannot ask hub-store about the uplink, twin GETs ask the cloud first: %m");
                return;
        }
        if (u == UPLINK_KNOWN_DOWN && m->links_up == 0) {
                m->heard_link = true;
                log_info("The uplink is down (hub-store says): twin GETs are answered from the cache");
        }
}

void manager_on_bus_connected(Bus *b, void *userdata) {
        Manager *m = userdata;

        /* Links that came up before we subscribed were announced to nobody: hub-store says them again. */
        if (bus_publish(m->bus, BUS_TOPIC_LINK_QUERY, "", 0, NULL, NULL, NULL, NULL) < 0)
                log_debug("Cannot ask hub-store which upstream links are up, ignoring");

        learn_uplink(m);
        /* After a start or a broker restart: get the hub's own configuration, push what waits. */
        Twin *eh = manager_twin(m, m->edgehub_identity);
        if (eh)
                manager_fetch(m, eh);
        for (size_t i = 0; i < key_map_size(&m->twins); i++)
                manager_push(m, key_map_value_at(&m->twins, i));
}
