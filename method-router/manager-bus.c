/* method-router's requests on the bus: device answers, MQTT invocations, cloud calls */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "method-router/manager.h"
#include "proto/iothub/method-request.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

/* Who waits for a call that came over the bus, and where its answer goes. */
typedef struct BusCaller {
        Manager *manager;
        char *client;  /* the caller (MQTT form) or the identity the cloud called (cloud) */
        char *rid;     /* the caller's rid, echoed */
        bool cloud;
} BusCaller;

static void bus_caller_free(void *userdata) {
        BusCaller *c = userdata;

        if (!c)
                return;
        free(c->client);
        free(c->rid);
        free(c);
}

static int bus_caller_new(Manager *m, const char *client, const char *rid, bool cloud, BusCaller **ret) {
        BusCaller *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->manager = m;
        c->cloud = cloud;
        c->client = strdup(client);
        c->rid = strdup(rid);
        if (!c->client || !c->rid) {
                bus_caller_free(c);
                return -ENOMEM;
        }
        *ret = c;
        return 0;
}

/* The MQTT form's answer: "$iothub/methods/invoke/res/{status}/?$rid=R" with the HTTP reply's body. */
static void reply_invoke(Manager *m, const char *caller, const char *rid, int status, const char *body) {
        _cleanup_free_ char *topic = NULL;
        int r;

        r = method_topic_format_res(true, status, rid, &topic);
        if (r >= 0)
                r = bus_publish(m->bus, BUS_TOPIC_DELIVER, body ?: "", body ? strlen(body) : 0, caller, topic, NULL,
                                NULL);
        if (r < 0)
                log_warning_errno(r, "Cannot answer the method invocation of '%s' (rid %s), dropped: %m", caller, rid);
}

/* The cloud's answer, sent upstream as the identity it called. */
static void reply_cloud(Manager *m, const char *identity, const char *rid, int status, const void *payload,
                        size_t len) {
        _cleanup_free_ char *topic = NULL;
        int r;

        r = method_topic_format_res(false, status, rid, &topic);
        if (r >= 0)
                r = bus_publish(m->bus, BUS_TOPIC_UPSTREAM, payload, len, identity, topic, NULL, NULL);
        if (r < 0)
                log_warning_errno(r, "Cannot send the answer of '%s' to the cloud (rid %s), dropped: %m", identity,
                                  rid);
}

static void on_call_done(const CallResult *result, void *userdata) {
        BusCaller *c = userdata;
        _cleanup_free_ char *body = NULL;

        if (c->cloud) {
                if (result->outcome == CALL_ANSWERED)
                        reply_cloud(c->manager, c->client, c->rid, result->device_status, result->payload,
                                    result->len);
                else {
                        body = manager_error_body(result->error_code, result->error_text);
                        reply_cloud(c->manager, c->client, c->rid, result->http_status, body ?: "",
                                    body ? strlen(body) : 0);
                }
        } else {
                int status = manager_result_reply(result, &body);
                reply_invoke(c->manager, c->client, c->rid, status, body);
        }
        bus_caller_free(c);
}

/* Starts a call for a bus caller; answers at once when it cannot start. */
static void bus_invoke(Manager *m, const char *client, const char *rid, bool cloud, const char *target,
                       const char *name, const char *payload, size_t len, unsigned response_timeout_sec,
                       unsigned connect_timeout_sec) {
        _cleanup_free_ char *body = NULL;
        BusCaller *caller = NULL;
        Call *call = NULL;
        int r, status;

        r = bus_caller_new(m, client, rid, cloud, &caller);
        if (r < 0) {
                log_warning_errno(r, "Cannot take the method call for '%s': %m", target);
                return;
        }
        r = manager_invoke(m, cloud ? "the cloud" : client, target, name, payload, len, response_timeout_sec,
                           connect_timeout_sec, on_call_done, caller, &call, &status, &body);
        if (r == 0) {
                call_set_destroy(call, bus_caller_free);
                return;
        }
        if (cloud)
                reply_cloud(m, client, rid, status, body ?: "", body ? strlen(body) : 0);
        else
                reply_invoke(m, client, rid, status, body);
        bus_caller_free(caller);
}

static void on_device_invoke(Manager *m, const char *client, const MethodTopic *t, const void *payload, size_t len) {
        _cleanup_(method_request_deinit) MethodRequest req = METHOD_REQUEST_NULL;
        _cleanup_free_ char *target = NULL, *body = NULL;
        const char *error = NULL;
        int r;

        r = manager_caller_check(m, client, &body);
        if (r != 0) {
                log_ratelimit(&m->bad_message_log, LOG_INFO, "Refused a method call by '%s': not a module of this edge device",
                              client);
                reply_invoke(m, client, t->rid, r, body);
                return;
        }
        r = method_request_parse(payload, len, &req, &error);
        if (r < 0) {
                body = manager_error_body(r == -E2BIG ? "MessageTooLarge" : "ArgumentInvalid",
                                          error ?: "malformed request");
                reply_invoke(m, client, t->rid, r == -E2BIG ? 413 : 400, body);
                return;
        }
        if (t->module_id ? asprintf(&target, "%s/%s", t->device_id, t->module_id) < 0
                         : !(target = strdup(t->device_id))) {
                target = NULL;
                return;
        }
        bus_invoke(m, client, t->rid, false, target, req.name, req.payload, req.payload_len,
                   req.response_timeout_sec, req.connect_timeout_sec);
}

static void on_cloud_call(Manager *m, const char *identity, const MethodTopic *t, const void *payload, size_t len) {
        _cleanup_free_ char *body = NULL;

        /* IoT Hub sends JSON; anything else can't be handed on as a method payload. */
        if (method_payload_check(payload, len) < 0) {
                body = manager_error_body("ArgumentInvalid", "the method payload is not JSON");
                reply_cloud(m, identity, t->rid, 400, body ?: "", body ? strlen(body) : 0);
                return;
        }
        /*
         * IoT Hub keeps its own deadline (responseTimeoutInSeconds) and drops
         * late answers: ours is its largest, so we never cut a call short.
         */
        bus_invoke(m, identity, t->rid, true, identity, t->name, len > 0 ? payload : "null", len > 0 ? len : 4,
                   METHOD_TIMEOUT_MAX_SEC, 0);
}

void manager_on_bus_message(Bus *b, const BusMessage *msg, void *userdata) {
        _cleanup_(method_topic_deinit) MethodTopic t = METHOD_TOPIC_NULL;
        Manager *m = userdata;
        const char *rest;
        bool cloud;

        if (strcmp(msg->topic, BUS_TOPIC_SUBSCRIBE) == 0) {
                /* libmosquitto hands an empty payload on as NULL (not for strndup()); it names no filter. */
                if (msg->len == 0)
                        return;
                _cleanup_free_ char *filter = strndup(msg->payload, msg->len);
                if (filter)
                        call_table_on_subscribe(&m->calls, msg->client, filter);
                return;
        }
        if (strncmp(msg->topic, BUS_PREFIX_DEVICE, strlen(BUS_PREFIX_DEVICE)) == 0) {
                rest = msg->topic + strlen(BUS_PREFIX_DEVICE);
                cloud = false;
        } else if (strncmp(msg->topic, BUS_PREFIX_CLOUD, strlen(BUS_PREFIX_CLOUD)) == 0) {
                rest = msg->topic + strlen(BUS_PREFIX_CLOUD);
                cloud = true;
        } else
                return;

        /* The plugin and hub-store always name the client; without one there is nobody to answer. */
        if (!msg->client || method_topic_parse(rest, &t) < 0) {
                log_ratelimit(&m->bad_message_log, LOG_INFO, "Ignoring a malformed method message from '%s' on '%s'",
                              msg->client ?: "?", msg->topic);
                return;
        }
        if (!cloud && t.kind == METHOD_TOPIC_RES)
                call_table_on_answer(&m->calls, msg->client, t.status, t.rid, msg->payload, msg->len);
        else if (!cloud && t.kind == METHOD_TOPIC_INVOKE)
                on_device_invoke(m, msg->client, &t, msg->payload, msg->len);
        else if (cloud && t.kind == METHOD_TOPIC_POST)
                on_cloud_call(m, msg->client, &t, msg->payload, msg->len);
}
