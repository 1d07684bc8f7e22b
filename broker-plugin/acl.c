/* Per-identity topic isolation (DESIGN.md invariant 5) */
#include <stdbool.h>
#include <string.h>

#include "broker-plugin/acl.h"
#include "broker-plugin/broker-api.h"
#include "broker-plugin/bus-relay.h"
#include "broker-plugin/plugin.h"
#include "broker-plugin/will.h"
#include "proto/ipc/bus.h"
#include "proto/util/cleanup.h"

/*
 * Each rule is a literal prefix of topic levels; "{device}" and "{module}"
 * stand for the client's own ids. A topic or filter is allowed when its
 * first levels equal the prefix exactly. Ids cannot contain '/', '+' or
 * '#' (identity.c), and a prefix level is never a wildcard, so every topic
 * a permitted filter can match lies under the prefix: "devices/#",
 * "devices/+/messages/events/#" and "#" fail on their first wildcard. MQTT
 * has no path semantics, so ".." is just another level name.
 */
#define LEVELS_MAX 6
#define DEVICE "{device}"
#define MODULE "{module}"

#define KIND_DEVICE (1u << CLIENT_DEVICE)
#define KIND_MODULE (1u << CLIENT_MODULE)
#define KIND_INTERNAL (1u << CLIENT_INTERNAL)
#define ACCESS_RECEIVE (MOSQ_ACL_READ | MOSQ_ACL_SUBSCRIBE)

typedef struct AclRule {
        unsigned kinds;
        int access;
        const char *levels[LEVELS_MAX + 1]; /* NULL-terminated */
} AclRule;

static const AclRule acl_rules[] = {
        /* Telemetry and module outputs; message.c checks the rest of the topic. */
        { KIND_DEVICE, MOSQ_ACL_WRITE, { "devices", DEVICE, "messages", "events" } },
        { KIND_MODULE, MOSQ_ACL_WRITE, { "devices", DEVICE, "modules", MODULE, "messages", "events" } },
        /* Cloud-to-device messages and module inputs. */
        { KIND_DEVICE, ACCESS_RECEIVE, { "devices", DEVICE, "messages", "devicebound" } },
        { KIND_MODULE, ACCESS_RECEIVE, { "devices", DEVICE, "modules", MODULE, "inputs" } },
        /*
         * The SDKs subscribe to these identity-implicit topics. Only
         * directed delivery (mosquitto_broker_publish to one client id) may
         * ever publish on them: nobody has write access here.
         */
        { KIND_DEVICE | KIND_MODULE, ACCESS_RECEIVE, { "$iothub", "twin", "res" } },
        { KIND_DEVICE | KIND_MODULE, ACCESS_RECEIVE, { "$iothub", "twin", "PATCH", "properties", "desired" } },
        { KIND_DEVICE | KIND_MODULE, ACCESS_RECEIVE, { "$iothub", "methods", "POST" } },
        { KIND_DEVICE | KIND_MODULE, ACCESS_RECEIVE, { "$iothub", "methods", "invoke", "res" } },
        /*
         * Requests the SDKs publish under $iothub/: message.c relays them to
         * our daemons as "$edgehub/device/..." tagged with the sender, so no
         * client ever receives another's request.
         */
        { KIND_DEVICE | KIND_MODULE, MOSQ_ACL_WRITE, { "$iothub", "twin", "GET" } },
        { KIND_DEVICE | KIND_MODULE, MOSQ_ACL_WRITE, { "$iothub", "twin", "PATCH", "properties", "reported" } },
        { KIND_DEVICE | KIND_MODULE, MOSQ_ACL_WRITE, { "$iothub", "methods", "res" } },
        { KIND_DEVICE | KIND_MODULE, MOSQ_ACL_WRITE, { "$iothub", "methods", "invoke" } },
        /* Our daemons talk among themselves under $edgehub/, and only there. */
        { KIND_INTERNAL, ACCESS_RECEIVE | MOSQ_ACL_WRITE, { "$edgehub" } },
};

static const char *rule_level(const char *level, const Client *c) {
        if (strcmp(level, DEVICE) == 0)
                return c->device;
        if (strcmp(level, MODULE) == 0)
                return c->module;
        return level;
}

static bool rule_matches(const AclRule *rule, const Client *c, const char *topic) {
        const char *t = topic;

        for (size_t i = 0; rule->levels[i]; i++) {
                const char *want = rule_level(rule->levels[i], c);

                if (i > 0) {
                        /* The previous level ended at a '/': step over it. */
                        if (*t != '/')
                                return false;
                        t++;
                }
                /* Whole levels only: "eventsX" is not "events". */
                size_t n = strcspn(t, "/");
                if (*want == '\0' || n != strlen(want) || memcmp(t, want, n) != 0)
                        return false;
                t += n;
        }
        return true;
}

static int acl_rules_match(const Client *c, int access, const char *topic) {
        for (size_t i = 0; i < ELEMENTSOF(acl_rules); i++) {
                const AclRule *rule = &acl_rules[i];

                if (!(rule->kinds & (1u << c->kind)) || !(rule->access & access))
                        continue;
                if (rule_matches(rule, c, topic))
                        return MOSQ_ERR_SUCCESS;
        }
        return MOSQ_ERR_ACL_DENIED;
}

int acl_decide(const Client *c, int access, const char *topic) {
        /* Dropping a subscription never grants anything. */
        if (access == MOSQ_ACL_UNSUBSCRIBE)
                return MOSQ_ERR_SUCCESS;
        if (!c || !topic || c->kind < 0 || c->kind >= _CLIENT_KIND_MAX)
                return MOSQ_ERR_ACL_DENIED;

        int rc = acl_rules_match(c, access, topic);
        /*
         * What a device or module may write, no device or module may read:
         * a message that skips message.c's rewrite (a Will, will.c) then
         * reaches nobody. "$iothub/methods/invoke" (write) would otherwise
         * cover "$iothub/methods/invoke/res" (receive).
         */
        if (rc == MOSQ_ERR_SUCCESS && access == MOSQ_ACL_WRITE && c->kind != CLIENT_INTERNAL &&
            acl_rules_match(c, ACCESS_RECEIVE, topic) == MOSQ_ERR_SUCCESS)
                return MOSQ_ERR_ACL_DENIED;
        return rc;
}

int acl_check_callback(int event, void *event_data, void *userdata) {
        struct mosquitto_evt_acl_check *ed = event_data;
        Plugin *p = userdata;
        Client c;

        int rc;

        /* A client that fails classification stays CLIENT_NULL: denied. */
        (void) client_classify_broker(p->broker_socket, ed->client, &c);
        bool device = c.kind == CLIENT_DEVICE || c.kind == CLIENT_MODULE;
        /* A device's write check with no live connection behind it is its Will (will.h). */
        if (device && ed->access == MOSQ_ACL_WRITE && !token_expiry_is_live(&p->expiry, ed->client))
                return will_handle(p, &c, ed);
        /* Retained messages are not part of IoT Hub's MQTT: a device never receives one. */
        if (device && ed->access == MOSQ_ACL_READ && ed->retain)
                return MOSQ_ERR_ACL_DENIED;
        rc = acl_decide(&c, ed->access, ed->topic);
        /* twin-sync sends a returning device what changed once it listens for desired patches. */
        if (rc == MOSQ_ERR_SUCCESS && ed->access == MOSQ_ACL_SUBSCRIBE && device && strncmp(ed->topic, "$iothub/", 8) == 0) {
                const char *client_id = mosquitto_client_id(ed->client);
                if (client_id)
                        bus_relay_announce(p, BUS_TOPIC_SUBSCRIBE, client_id, ed->topic);
        }
        return rc;
}
