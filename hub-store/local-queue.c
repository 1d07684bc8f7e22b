/* Delivery of a local endpoint's queue (module inputs, cloud-to-device) through the broker */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub-store/local-queue.h"
#include "hub-store/upstream-topic.h"
#include "proto/iothub/iot-identity.h"
#include "proto/ipc/frame.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

#define INPUT_PREFIX "/modules/"
#define INPUT_MIDDLE "/inputs/"

/* "/modules/{m}/inputs/{i}" split into m and i. */
static int input_endpoint_parse(const char *endpoint, char **ret_module, char **ret_input) {
        const char *m, *mid, *input;

        if (strncmp(endpoint, INPUT_PREFIX, strlen(INPUT_PREFIX)) != 0)
                return -EINVAL;
        m = endpoint + strlen(INPUT_PREFIX);
        mid = strstr(m, INPUT_MIDDLE);
        if (!mid)
                return -EINVAL;
        input = mid + strlen(INPUT_MIDDLE);
        _cleanup_free_ char *module = strndup(m, (size_t) (mid - m));
        if (!module)
                return -ENOMEM;
        if (!iot_id_is_valid(module) || !*input || strpbrk(input, "/+#"))
                return -EINVAL;
        char *i = strdup(input);
        if (!i)
                return -ENOMEM;
        *ret_module = TAKE_PTR(module);
        *ret_input = i;
        return 0;
}

bool local_endpoint_is_valid(const char *endpoint) {
        _cleanup_free_ char *module = NULL, *input = NULL;

        return strcmp(endpoint, LOCAL_ENDPOINT_C2D) == 0 || input_endpoint_parse(endpoint, &module, &input) >= 0;
}

static void local_done(Bus *b, int reason, void *userdata) {
        LocalQueue *q = userdata;
        bool delivered = reason == BUS_REASON_SUCCESS || reason == BUS_REASON_NO_SUBSCRIBERS;

        if (q->in_flight > 0)
                q->in_flight--;
        /* The broker acknowledges one connection's publishes in order: this is the oldest in flight. */
        if (!q->failed && delivered && q->sender.n_window > 0) {
                int r = sender_ack(&q->sender, q->sender.window[0].mid);
                if (r < 0 && r != -ENOENT)
                        log_warning_errno(r, "Failed to remove a delivered message of '%s' for '%s', it will come again: %m",
                                          q->stream->identity, q->target);
        } else if (!q->failed) {
                q->failed = true;
                if (reason == BUS_REASON_NOT_AUTHORIZED) {
                        q->blocked = true;
                        log_debug("'%s' is not connected: its queue '%s' waits", q->target, q->stream->endpoint);
                }
        }
        if (q->failed && q->in_flight == 0) {
                sender_reset(&q->sender);
                q->failed = false;
        }
        local_queue_fill(q);
}

static int local_publish(void *userdata, const StoreRecord *r, int *ret_mid) {
        LocalQueue *q = userdata;
        _cleanup_free_ char *topic = NULL;
        int rc;

        if (q->module)
                rc = local_input_topic_format(q->edge_device_id, q->module, q->input, r->message.properties,
                                              r->message.identity, &topic);
        else
                rc = c2d_topic_format(q->target, r->message.properties, &topic);
        if (rc == -ENOMEM)
                return rc;
        if (rc < 0)
                return -EBADMSG;

        rc = bus_publish(q->bus, BUS_TOPIC_DELIVER, r->message.payload, r->message.payload_len, q->target, topic,
                         local_done, q);
        if (rc == -EMSGSIZE)
                return -EBADMSG;
        if (rc < 0)
                return rc == -ENOMEM ? rc : -ECONNRESET;
        q->in_flight++;
        *ret_mid = ++q->next_mid;
        if (q->next_mid == INT32_MAX)
                q->next_mid = 0;
        return 0;
}

void local_queue_fill(LocalQueue *q) {
        if (q->blocked || q->failed || !bus_connected(q->bus) || !sender_has_more(&q->sender))
                return;
        int r = sender_fill(&q->sender, realtime_msec(), local_publish, q);
        if (r < 0 && r != -ECONNRESET)
                log_debug_errno(r, "Delivery of '%s' to '%s' paused: %m", q->stream->endpoint, q->target);
}

void local_queue_unblock(LocalQueue *q) {
        q->blocked = false;
        local_queue_fill(q);
}

void local_queue_restart(LocalQueue *q) {
        q->in_flight = 0;
        q->failed = false;
        sender_reset(&q->sender);
        local_queue_fill(q);
}

int local_queue_new(LocalQueue **ret, Store *store, StoreStream *st, Bus *bus, const char *edge_device_id,
                    uint64_t ttl_ms) {
        _cleanup_free_ LocalQueue *q = NULL;
        _cleanup_free_ char *module = NULL, *input = NULL, *target = NULL, *edge = NULL;
        int r;

        if (strcmp(st->endpoint, LOCAL_ENDPOINT_C2D) == 0)
                target = strdup(st->identity);
        else {
                r = input_endpoint_parse(st->endpoint, &module, &input);
                if (r < 0)
                        return r;
                if (asprintf(&target, "%s/%s", edge_device_id, module) < 0)
                        target = NULL;
        }
        edge = strdup(edge_device_id);
        q = calloc(1, sizeof(*q));
        if (!target || !edge || !q)
                return -ENOMEM;
        *q = (LocalQueue){
                .stream = st,
                .bus = bus,
                .edge_device_id = TAKE_PTR(edge),
                .target = TAKE_PTR(target),
                .module = TAKE_PTR(module),
                .input = TAKE_PTR(input),
        };
        sender_init(&q->sender, store, st, ttl_ms);
        *ret = TAKE_PTR(q);
        return 0;
}

LocalQueue *local_queue_free(LocalQueue *q) {
        if (!q)
                return NULL;
        bus_forget(q->bus, q);
        free(q->edge_device_id);
        free(q->target);
        free(q->module);
        free(q->input);
        free(q);
        return NULL;
}
