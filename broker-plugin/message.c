/* Published messages: telemetry hand-off to hub-store before PUBACK, internal commands */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker-plugin/broker-api.h"
#include "broker-plugin/bus-relay.h"
#include "broker-plugin/message.h"
#include "broker-plugin/plugin.h"
#include "proto/iothub/device-topic.h"
#include "proto/iothub/property-bag.h"
#include "proto/ipc/bus.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

/*
 * DESIGN.md invariant 1 (no acknowledged message is lost): mosquitto
 * 2.0.11 runs MOSQ_EVT_MESSAGE before it sends PUBACK/PUBREC
 * (src/handle_publish.c, plugin__handle_message() comes before
 * send__puback()). So a device's telemetry is acknowledged only after one
 * complete write() of it to the ingest log (ingest-append.c; and its
 * fdatasync under sync: always), which hub-store imports. No round trip to
 * another process on the broker's only thread. What the return value does
 * there:
 *   MOSQ_ERR_SUCCESS     the broker goes on and acknowledges.
 *   MOSQ_ERR_ACL_DENIED  "goto process_bad_message": the message is dropped
 *                        and acknowledged (reason 0x87 for MQTT v5; a v3.1.1
 *                        client cannot be told and sees a plain PUBACK).
 *   anything else        "db__msg_store_free(msg); return rc;" up through
 *                        handle__packet()/packet__read() to mux_epoll.c,
 *                        which calls do_disconnect(): no acknowledgement, so
 *                        the client sends the message again after it
 *                        reconnects. MOSQ_ERR_UNKNOWN also makes
 *                        src/read_handle.c send a v5 client DISCONNECT 0x80.
 */

void message_deinit(Message *m) {
        free(m->properties);
        free(m->output);
        free(m->target);
        *m = MESSAGE_NULL;
}

static int classify_kick(const char *client_id, const void *payload, size_t len, Message *ret) {
        /* The target must be one whole client id, and not the sender: kicking the
         * connection whose packet the broker is still handling is not safe. */
        if (len == 0 || memchr(payload, '\0', len)) {
                *ret = (Message){ .kind = MESSAGE_MALFORMED, .why = "empty kick target" };
                return 0;
        }
        if (client_id && strlen(client_id) == len && memcmp(client_id, payload, len) == 0) {
                *ret = (Message){ .kind = MESSAGE_MALFORMED, .why = "a client may not kick itself" };
                return 0;
        }

        char *target = strndup(payload, len);
        if (!target)
                return -ENOMEM;
        *ret = (Message){ .kind = MESSAGE_KICK, .target = target };
        return 0;
}

static bool topic_is_own(const DeviceTopic *t, const Client *sender) {
        if (strcmp(t->device_id, sender->device) != 0)
                return false;
        if (sender->kind == CLIENT_MODULE)
                return t->kind == TOPIC_MODULE_OUTPUT && strcmp(t->module_id, sender->module) == 0;
        return t->kind == TOPIC_TELEMETRY;
}

static int classify_telemetry(const Client *sender, const char *topic, size_t len, Message *ret) {
        _cleanup_(device_topic_deinit) DeviceTopic t = DEVICE_TOPIC_NULL;
        _cleanup_(property_bag_deinit) PropertyBag bag = {};
        _cleanup_free_ char *properties = NULL, *output = NULL;
        int r;

        r = device_topic_parse(topic, &t);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                /* The ACL lets a client write under its own events prefix; anything else is foreign. */
                *ret = (Message){ .kind = MESSAGE_FOREIGN, .why = "not a telemetry topic" };
                return 0;
        }
        if (!topic_is_own(&t, sender)) {
                *ret = (Message){ .kind = MESSAGE_FOREIGN, .why = "another identity's topic" };
                return 0;
        }
        if (len > MESSAGE_PAYLOAD_MAX) {
                *ret = (Message){ .kind = MESSAGE_OVERSIZE };
                return 0;
        }

        r = property_bag_parse(t.bag, strlen(t.bag), &bag);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret = (Message){ .kind = MESSAGE_MALFORMED,
                                  .why = r == -E2BIG ? "property bag too big" : "malformed property bag" };
                return 0;
        }

        r = property_bag_format(&bag, &properties);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret = (Message){ .kind = MESSAGE_MALFORMED, .why = "malformed property bag" };
                return 0;
        }

        if (sender->kind == CLIENT_MODULE) {
                const char *on = property_bag_get(&bag, "$.on");
                if (on && *on) {
                        output = strdup(on);
                        if (!output)
                                return -ENOMEM;
                }
        }

        *ret = (Message){
                .kind = MESSAGE_TELEMETRY,
                .properties = TAKE_PTR(properties),
                .output = TAKE_PTR(output),
        };
        return 0;
}

int message_classify(const Client *sender, const char *client_id, const char *topic, const void *payload,
                     size_t len, Message *ret) {
        if (sender->kind == CLIENT_INTERNAL) {
                if (strcmp(topic, BUS_TOPIC_KICK) == 0)
                        return classify_kick(client_id, payload, len, ret);
                if (strcmp(topic, BUS_TOPIC_DELIVER) == 0) {
                        *ret = (Message){ .kind = MESSAGE_DELIVER };
                        return 0;
                }
                if (strcmp(topic, BUS_TOPIC_PRESENCE_QUERY) == 0) {
                        *ret = (Message){ .kind = MESSAGE_PRESENCE_QUERY };
                        return 0;
                }
                *ret = (Message){ .kind = MESSAGE_PASS };
                return 0;
        }
        if (sender->kind == CLIENT_DEVICE || sender->kind == CLIENT_MODULE) {
                /* The ACL admits only the request topics under $iothub/ (acl.c). */
                if (strncmp(topic, "$iothub/", 8) == 0) {
                        *ret = len > MESSAGE_PAYLOAD_MAX ? (Message){ .kind = MESSAGE_OVERSIZE }
                                                         : (Message){ .kind = MESSAGE_REQUEST };
                        return 0;
                }
                return classify_telemetry(sender, topic, len, ret);
        }

        *ret = (Message){ .kind = MESSAGE_FOREIGN, .why = "unknown sender" };
        return 0;
}

static int message_store(Plugin *p, const char *identity, const Message *m, struct mosquitto_evt_message *ed) {
        /* Invariant 1 holds once the record is in the ingest log. */
        int status = ingest_append(&p->ingest, identity, m->properties, ed->payload, ed->payloadlen, m->output);

        if (status == 0) {
                log_debug("Stored telemetry of '%s' (%" PRIu32 " bytes)", identity, ed->payloadlen);
                return MOSQ_ERR_SUCCESS;
        }

        /* QoS 0 promises nothing and cannot be resent: drop it rather than cut the client off. */
        const char *action = ed->qos == 0 ? "dropped it (QoS 0)" : "disconnecting it";
        if (status == -ENOBUFS)
                log_ratelimit_warning(&p->store_ratelimit, "Telemetry of '%s' not stored, the store is full, %s",
                                      identity, action);
        else
                log_ratelimit_warning(&p->store_ratelimit, "Telemetry of '%s' not stored (%s), %s", identity,
                                      strerror(-status), action);

        if (ed->qos == 0)
                return MOSQ_ERR_ACL_DENIED;
        return MOSQ_ERR_UNKNOWN;
}

static int message_kick(const char *sender, const char *target) {
        int r = mosquitto_kick_client_by_clientid(target, false);
        if (r == MOSQ_ERR_SUCCESS)
                log_info("Disconnected client '%s' at the request of '%s'", target, sender);
        else
                log_debug("Kick of client '%s' requested by '%s': not connected", target, sender);
        return MOSQ_ERR_SUCCESS;
}

int message_callback(int event, void *event_data, void *userdata) {
        struct mosquitto_evt_message *ed = event_data;
        _cleanup_(message_deinit) Message m = MESSAGE_NULL;
        const char *client_id = mosquitto_client_id(ed->client);
        Plugin *p = userdata;
        Client c;
        int r;

        r = client_classify_broker(p->broker_socket, ed->client, &c);
        if (r < 0) {
                /* The ACL check let it through, so this cannot happen; deny all the same. */
                log_ratelimit_warning(&p->message_ratelimit, "Message from unclassifiable client '%s' dropped",
                                      strna(client_id));
                return MOSQ_ERR_ACL_DENIED;
        }

        r = message_classify(&c, client_id, ed->topic, ed->payload, ed->payloadlen, &m);
        if (r < 0) {
                log_ratelimit_warning(&p->message_ratelimit, "Message from '%s' not handled: %s", strna(client_id),
                                      strerror(-r));
                return MOSQ_ERR_NOMEM;
        }

        switch (m.kind) {
        case MESSAGE_TELEMETRY:
                /* IoT Hub does not retain telemetry; neither may the broker keep a copy of it. */
                ed->retain = false;
                return message_store(p, client_id, &m, ed);
        case MESSAGE_KICK:
                return message_kick(strna(client_id), m.target);
        case MESSAGE_REQUEST:
                return bus_relay_device_request(p, client_id, ed);
        case MESSAGE_DELIVER:
                return bus_relay_deliver(p, ed);
        case MESSAGE_PRESENCE_QUERY:
                bus_relay_answer_presence(p, client_id);
                return MOSQ_ERR_SUCCESS;
        case MESSAGE_PASS:
                return MOSQ_ERR_SUCCESS;
        case MESSAGE_OVERSIZE:
                log_ratelimit_warning(&p->message_ratelimit,
                                      "Telemetry of '%s' is %" PRIu32 " bytes, over IoT Hub's %u, disconnecting it",
                                      strna(client_id), ed->payloadlen, MESSAGE_PAYLOAD_MAX);
                /* Not an ACL error: disconnect without an acknowledgement, as IoT Hub does. */
                return MOSQ_ERR_PAYLOAD_SIZE;
        case MESSAGE_MALFORMED:
        case MESSAGE_FOREIGN:
        default:
                log_ratelimit_warning(&p->message_ratelimit, "Message of '%s' on '%s' dropped: %s",
                                      strna(client_id), ed->topic, m.why ? m.why : "unexpected");
                return MOSQ_ERR_ACL_DENIED;
        }
}
