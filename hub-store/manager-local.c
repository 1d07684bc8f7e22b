/* The Manager's local endpoints: module inputs and cloud-to-device queues (local-queue.h) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hub-store/local-queue.h"
#include "hub-store/manager.h"
#include "hub-store/upstream-topic.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

int manager_local_queue(Manager *m, StoreStream *st, uint64_t ttl_ms, LocalQueue **ret) {
        LocalQueue *q = key_map_get(&m->local_queues, st->prefix.buf, st->prefix.len);
        int r;

        if (!q) {
                r = local_queue_new(&q, m->store, st, m->bus, m->config->edge_device_id,
                                    ttl_ms ? ttl_ms : m->ttl_sec * 1000u);
                if (r < 0)
                        return r;
                r = key_map_put(&m->local_queues, st->prefix.buf, st->prefix.len, q);
                if (r < 0) {
                        local_queue_free(q);
                        return r;
                }
                Device *target = manager_device_find(m, q->target);
                /* Unknown presence: try, the broker says if it is not there. */
                q->blocked = target && !target->connected;
        } else if (ttl_ms)
                q->sender.ttl_ms = ttl_ms;
        *ret = q;
        return 0;
}

void manager_local_appended(Manager *m, StoreStream *st) {
        LocalQueue *q;
        int r;

        /* manager_store_append() gave the stream the message's time to live. */
        r = manager_local_queue(m, st, st->ttl_ms, &q);
        if (r < 0) {
                /* Stored: manager_local_tick() sets the queue up again. */
                log_warning_errno(r, "Failed to set up delivery of '%s': %m", st->endpoint);
                return;
        }
        local_queue_fill(q);
}

int manager_store_local(Manager *m, const char *endpoint, uint8_t priority, uint64_t ttl_ms, const StoreMessage *msg,
                        StoreOrigin origin) {
        StoreStream *st;
        int r;

        r = manager_store_append(m, endpoint, priority, ttl_ms, msg, origin, &st);
        if (r < 0)
                return r;
        manager_local_appended(m, st);
        return 0;
}

int manager_c2d_store(Manager *m, Device *d, const char *topic, const void *payload, size_t len) {
        _cleanup_free_ char *device = NULL, *module = NULL, *properties = NULL;
        int r;

        r = iot_identity_split(d->identity, &device, &module);
        if (r < 0)
                return r;
        if (module)
                return -EINVAL; /* IoT Hub sends no cloud-to-device messages to modules */
        r = c2d_topic_parse(topic, device, &properties);
        if (r < 0)
                return r;
        StoreMessage msg = {
                .time_ms = realtime_msec(),
                .identity = d->identity,
                .properties = properties,
                .payload = payload,
                .payload_len = len,
        };
        /* libmosquitto acknowledged it to the hub already: keep it even over a reject_new budget. */
        r = manager_store_local(m, LOCAL_ENDPOINT_C2D, 0, 0, &msg, STORE_ORIGIN_ACKNOWLEDGED);
        manager_store_result(m, r);
        if (r >= 0)
                log_info("Cloud-to-device message for '%s' stored (%zu bytes)", d->identity, len);
        return r;
}

void manager_local_presence(Manager *m, const char *identity, bool connected) {
        if (!connected)
                return;
        for (size_t i = 0; i < key_map_size(&m->local_queues); i++) {
                LocalQueue *q = key_map_value_at(&m->local_queues, i);
                if (strcmp(q->target, identity) == 0)
                        local_queue_unblock(q);
        }
}

void manager_local_bus_connected(Manager *m) {
        for (size_t i = 0; i < key_map_size(&m->local_queues); i++)
                local_queue_restart(key_map_value_at(&m->local_queues, i));
}

void manager_local_tick(Manager *m) {
        for (size_t i = 0; i < key_map_size(&m->local_queues); i++) {
                LocalQueue *q = key_map_value_at(&m->local_queues, i);
                Device *target = manager_device_find(m, q->target);

                /* The $edgeHub twin may have changed the global TTL. */
                q->sender.ttl_ms = q->stream->ttl_ms ? q->stream->ttl_ms : m->ttl_sec * 1000u;
                /* A refusal may have crossed the target's connect report: look again. */
                if (q->blocked && target && target->connected)
                        local_queue_unblock(q);
                else
                        local_queue_fill(q);
        }
}

int manager_local_setup(Manager *m) {
        for (size_t i = 0; i < store_n_streams(m->store); i++) {
                StoreStream *st = store_stream_at(m->store, i);
                LocalQueue *q;

                if (strcmp(st->endpoint, STORE_ENDPOINT_UPSTREAM) == 0 || !local_endpoint_is_valid(st->endpoint))
                        continue;
                int r = manager_local_queue(m, st, 0, &q);
                if (r < 0)
                        return r;
        }
        return 0;
}

void manager_local_free(Manager *m) {
        for (size_t i = 0; i < key_map_size(&m->local_queues); i++)
                local_queue_free(key_map_value_at(&m->local_queues, i));
        key_map_deinit(&m->local_queues);
}

void manager_kick_senders(Manager *m) {
        for (size_t i = 0; i < key_map_size(&m->devices); i++) {
                Device *d = key_map_value_at(&m->devices, i);
                if (d->link)
                        link_kick(d->link);
        }
        for (size_t i = 0; i < key_map_size(&m->local_queues); i++)
                local_queue_fill(key_map_value_at(&m->local_queues, i));
}
