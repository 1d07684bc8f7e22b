/* The plugin's side of the internal bus (proto/ipc/bus.h): requests, directed delivery, presence */
#include <errno.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker-plugin/broker-api.h"
#include "broker-plugin/bus-relay.h"
#include "proto/ipc/bus.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

#define IOTHUB_PREFIX "$iothub/"

static mosquitto_property *client_property(const char *client) {
        mosquitto_property *props = NULL;

        if (mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, BUS_PROPERTY_CLIENT, client) !=
            MOSQ_ERR_SUCCESS) {
                mosquitto_property_free_all(&props);
                return NULL;
        }
        return props;
}

int bus_relay_device_request(Plugin *p, const char *client_id, struct mosquitto_evt_message *ed) {
        size_t prefix = strlen(IOTHUB_PREFIX);
        mosquitto_property *props;
        char *topic;

        if (!client_id || strncmp(ed->topic, IOTHUB_PREFIX, prefix) != 0)
                return MOSQ_ERR_ACL_DENIED;
        props = client_property(client_id);
        if (!props)
                return MOSQ_ERR_NOMEM;
        topic = mosquitto_malloc(strlen(BUS_PREFIX_DEVICE) + strlen(ed->topic + prefix) + 1);
        if (!topic) {
                mosquitto_property_free_all(&props);
                return MOSQ_ERR_NOMEM;
        }
        strcpy(stpcpy(topic, BUS_PREFIX_DEVICE), ed->topic + prefix);

        /* mosquitto 2.0.11 does not free a topic the plugin replaces (fixed in 2.0.15). */
        mosquitto_free(ed->topic);
        ed->topic = topic;
        mosquitto_property_free_all(&ed->properties);
        ed->properties = props;
        /* A request is answered, never kept for a later subscriber. */
        ed->retain = false;
        return MOSQ_ERR_SUCCESS;
}

/* The value of the first user property named key, or NULL; the caller frees it. */
static char *user_property(const mosquitto_property *props, const char *key) {
        for (const mosquitto_property *prop = props; prop; prop = mosquitto_property_next(prop)) {
                char *name = NULL, *value = NULL;

                if (mosquitto_property_identifier(prop) != MQTT_PROP_USER_PROPERTY)
                        continue;
                if (!mosquitto_property_read_string_pair(prop, MQTT_PROP_USER_PROPERTY, &name, &value, false))
                        return NULL;
                bool match = strcmp(name, key) == 0;
                free(name);
                if (match)
                        return value;
                free(value);
        }
        return NULL;
}

int bus_relay_deliver(Plugin *p, struct mosquitto_evt_message *ed) {
        _cleanup_free_ char *client = user_property(ed->properties, BUS_PROPERTY_CLIENT);
        _cleanup_free_ char *topic = user_property(ed->properties, BUS_PROPERTY_TOPIC);
        int rc;

        if (!client || !topic) {
                log_ratelimit_warning(&p->message_ratelimit, "Delivery request without a client or topic, dropped");
                return MOSQ_ERR_ACL_DENIED;
        }
        /* The broker would drop it silently for an absent client; the sender must hear about it. */
        if (presence_count(&p->presence, client) == 0) {
                log_debug("Delivery to '%s' on '%s': not connected", client, topic);
                return MOSQ_ERR_ACL_DENIED;
        }
        rc = mosquitto_broker_publish_copy(client, topic, (int) ed->payloadlen, ed->payload, 1, false, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
                log_ratelimit_warning(&p->message_ratelimit, "Delivery to '%s' on '%s' failed: %s", client, topic,
                                      mosquitto_strerror(rc));
                return MOSQ_ERR_ACL_DENIED;
        }
        log_debug("Delivered %" PRIu32 " bytes to '%s' on '%s'", ed->payloadlen, client, topic);
        ed->retain = false;
        return MOSQ_ERR_SUCCESS;
}

/* to: one client id (it need not subscribe), or NULL for every subscriber of topic. */
static void announce(Plugin *p, const char *to, const char *topic, const char *client, const char *payload) {
        mosquitto_property *props = client_property(client);
        int rc;

        if (!props) {
                log_ratelimit_warning(&p->message_ratelimit, "Out of memory announcing '%s' on '%s'", client, topic);
                return;
        }
        /* QoS 1: a daemon that is connected gets it even across a busy moment of the broker. */
        rc = mosquitto_broker_publish_copy(to, topic, (int) strlen(payload), payload, 1, false, props);
        if (rc != MOSQ_ERR_SUCCESS) {
                mosquitto_property_free_all(&props);
                log_ratelimit_warning(&p->message_ratelimit, "Failed to announce '%s' on '%s': %s", client, topic,
                                      mosquitto_strerror(rc));
        }
}

void bus_relay_announce(Plugin *p, const char *topic, const char *client, const char *payload) {
        announce(p, NULL, topic, client, payload);
}

typedef struct PresenceAnswer {
        Plugin *plugin;
        const char *to;
} PresenceAnswer;

static int answer_connected(const char *identity, void *userdata) {
        PresenceAnswer *a = userdata;
        announce(a->plugin, a->to, BUS_TOPIC_PRESENCE, identity, "connected");
        return 0;
}

void bus_relay_answer_presence(Plugin *p, const char *asker) {
        PresenceAnswer a = { .plugin = p, .to = asker };

        if (!asker)
                return;
        (void) presence_foreach_identity(&p->presence, answer_connected, &a);
}
