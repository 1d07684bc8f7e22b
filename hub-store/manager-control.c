/* The Manager's control commands (hubctl): status, queues, devices as JSON */
#include <errno.h>
#include <string.h>

#include "hub-store/manager.h"
#include "proto/iothub/route.h"
#include "proto/util/cleanup.h"

/* Every command is O(identities), never O(messages): hubctl and benchmarks poll them. */

static json_t *control_status(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        unsigned connected = 0;

        for (size_t i = 0; i < key_map_size(&m->devices); i++) {
                const Device *d = key_map_value_at(&m->devices, i);
                if (d->connected)
                        connected++;
        }
        json_t *offline_since = m->uplink == UPLINK_DOWN ? json_integer((json_int_t) m->offline_since_ms) : json_null();

        json_t *j = json_pack("{s:s, s:I, s:I, s:o, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:s, s:I, s:s}}",
                              "uplink", manager_uplink_string(m),
                              "links_up", (json_int_t) manager_links_up(m),
                              "links_total", (json_int_t) manager_links_total(m),
                              "offline_since_ms", offline_since,
                              "offline_count", (json_int_t) m->offline_count,
                              "connected_devices", (json_int_t) connected,
                              "store",
                              "messages", (json_int_t) store_messages(m->store),
                              "bytes", (json_int_t) store_bytes(m->store),
                              "max_bytes", (json_int_t) store_max_bytes(m->store),
                              "disk_bytes", (json_int_t) store_disk_bytes(m->store),
                              "overflow", overflow_policy_to_string(m->config->overflow),
                              "ttl_sec", (json_int_t) m->ttl_sec,
                              "dir", store_dir(m->store));
        if (!j)
                return NULL;
        /* Only while there is something to say: a move waiting (for a start), or why the last one failed. */
        json_t *store = json_object_get(j, "store");
        if ((m->location.wanted && json_object_set_new(store, "moving_to", json_string(m->location.wanted)) < 0) ||
            (m->storage_error && json_object_set_new(store, "move_error", json_string(m->storage_error)) < 0)) {
                json_decref(j);
                return NULL;
        }
        return j;
}

typedef struct QueueTotals {
        const char *endpoint;
        uint8_t priority;
        uint64_t messages, bytes, oldest_ms;
        uint64_t received, delivered, expired, dropped, rejected;
} QueueTotals;

static int queue_totals_append(json_t *array, const QueueTotals *q, uint64_t now_ms) {
        json_t *age = q->messages > 0 ? json_real(now_ms > q->oldest_ms ? (double) (now_ms - q->oldest_ms) / 1000.0 : 0.0)
                                      : json_null();
        json_t *j = json_pack("{s:s, s:i, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I}",
                              "endpoint", q->endpoint,
                              "priority", (int) q->priority,
                              "messages", (json_int_t) q->messages,
                              "bytes", (json_int_t) q->bytes,
                              "oldest_age_sec", age,
                              "received", (json_int_t) q->received,
                              "delivered", (json_int_t) q->delivered,
                              "expired", (json_int_t) q->expired,
                              "dropped", (json_int_t) q->dropped,
                              "rejected", (json_int_t) q->rejected);
        if (!j || json_array_append_new(array, j) < 0)
                return -ENOMEM;
        return 0;
}

static json_t *control_queues(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        json_auto_t *queues = json_array();
        uint64_t now = realtime_msec();
        QueueTotals q = { .endpoint = STORE_ENDPOINT_UPSTREAM };
        bool have = false, upstream_seen = false;
        int r;

        if (!queues)
                return NULL;
        /* Streams sort by endpoint, then priority: one queue's streams are adjacent. */
        for (size_t i = 0; i < store_n_streams(m->store); i++) {
                StoreStream *st = store_stream_at(m->store, i);
                if (have && (strcmp(q.endpoint, st->endpoint) != 0 || q.priority != st->priority)) {
                        r = queue_totals_append(queues, &q, now);
                        if (r < 0)
                                return NULL;
                        have = false;
                }
                if (!have) {
                        q = (QueueTotals) { .endpoint = st->endpoint, .priority = st->priority };
                        have = true;
                        if (st->priority == 0 && strcmp(st->endpoint, STORE_ENDPOINT_UPSTREAM) == 0)
                                upstream_seen = true;
                }
                q.messages += st->messages;
                q.bytes += st->bytes;
                uint64_t head_ms = store_stream_head_time_ms(m->store, st);
                if (st->messages > 0 && (q.oldest_ms == 0 || head_ms < q.oldest_ms))
                        q.oldest_ms = head_ms;
                q.received += st->received;
                q.delivered += st->delivered;
                q.expired += st->expired;
                q.dropped += st->dropped;
                q.rejected += st->rejected;
        }
        if (have) {
                r = queue_totals_append(queues, &q, now);
                if (r < 0)
                        return NULL;
        }
        /* The upstream queue is always listed, empty or not. */
        if (!upstream_seen) {
                q = (QueueTotals) { .endpoint = STORE_ENDPOINT_UPSTREAM };
                r = queue_totals_append(queues, &q, now);
                if (r < 0)
                        return NULL;
        }

        json_t *j = json_pack("{s:O}", "queues", queues);
        if (!j)
                return NULL;
        return j;
}

static json_t *control_routes(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        json_auto_t *routes = json_array();

        if (!routes)
                return NULL;
        for (size_t i = 0; i < m->routes->n; i++) {
                const RouteTableEntry *e = &m->routes->entries[i];
                _cleanup_free_ char *sink = NULL;

                if (route_sink_to_string(&e->route->sink, &sink) < 0)
                        return NULL;
                json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:I, s:I}",
                                      "name", e->name,
                                      "route", e->route->text,
                                      "sink", sink,
                                      "priority", (int) e->priority,
                                      "time_to_live_sec", (json_int_t) e->time_to_live_secs,
                                      "matched", (json_int_t) (m->route_matched ? m->route_matched[i] : 0));
                if (!j || json_array_append_new(routes, j) < 0)
                        return NULL;
        }
        json_t *j = json_pack("{s:s, s:I, s:I, s:O}",
                              "source", m->routes_source,
                              "ttl_sec", (json_int_t) m->ttl_sec,
                              "dropped_no_route", (json_int_t) m->dropped_no_route,
                              "routes", routes);
        if (!j)
                return NULL;
        return j;
}

static json_t *control_devices(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        json_auto_t *devices = json_array();

        if (!devices)
                return NULL;
        for (size_t i = 0; i < key_map_size(&m->devices); i++) {
                const Device *d = key_map_value_at(&m->devices, i);
                json_t *j = json_pack("{s:s, s:b, s:s, s:I, s:I}",
                                      "identity", d->identity,
                                      "connected", d->connected,
                                      "link", d->link ? link_state_to_string(link_state(d->link)) : "closed",
                                      "queued", (json_int_t) device_queued(d),
                                      "delivered", (json_int_t) device_delivered(d));
                if (!j || json_array_append_new(devices, j) < 0)
                        return NULL;
        }
        json_t *j = json_pack("{s:O}", "devices", devices);
        if (!j)
                return NULL;
        return j;
}

static const WireControlCommand control_commands[] = {
        { "status", control_status },
        { "queues", control_queues },
        { "devices", control_devices },
        { "routes", control_routes },
};

void manager_reply_control(Manager *m, const Frame *request, FrameBuilder *reply) {
        /* Only WIRE_CONTROL_REQUESTs come here: the one failure, another request type, cannot happen. */
        (void) wire_control_serve(control_commands, ELEMENTSOF(control_commands), m, request, reply);
}
