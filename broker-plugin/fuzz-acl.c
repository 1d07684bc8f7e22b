/* Fuzz target: client classification, ACL decisions and message classification against an oracle */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker-plugin/acl.h"
#include "broker-plugin/broker-api.h"
#include "broker-plugin/message.h"
#include "proto/runtime/log.h"

/*
 * Input: one flags byte (bits 0-1 the access, bit 2 internal socket, bit 3
 * internal username), the client id up to the first '\n', the topic after.
 * Whatever acl_decide() allows must lie under one of the identity's own
 * prefixes, checked here independently of acl.c's rule table.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SOCK "/run/edgehub/broker.sock"

static bool under(const char *topic, const char *prefix) {
        size_t n = strlen(prefix);
        return strncmp(topic, prefix, n) == 0 && (topic[n] == '\0' || topic[n] == '/');
}

static bool oracle_allows(const Client *c, int access, const char *topic) {
        char p[512];

        if (access == MOSQ_ACL_UNSUBSCRIBE)
                return true;
        if (c->kind == CLIENT_INTERNAL)
                return under(topic, "$edgehub");
        if (c->kind != CLIENT_DEVICE && c->kind != CLIENT_MODULE)
                return false;
        if (strpbrk(c->device, "/+#") || strpbrk(c->module, "/+#"))
                abort(); /* classification let a wildcard into an identity */

        if (c->kind == CLIENT_DEVICE)
                snprintf(p, sizeof(p), "devices/%s/messages/%s", c->device,
                         access == MOSQ_ACL_WRITE ? "events" : "devicebound");
        else
                snprintf(p, sizeof(p), "devices/%s/modules/%s/%s", c->device, c->module,
                         access == MOSQ_ACL_WRITE ? "messages/events" : "inputs");
        if (under(topic, p))
                return true;
        if (access == MOSQ_ACL_WRITE)
                return false;
        return under(topic, "$iothub/twin/res") || under(topic, "$iothub/twin/PATCH/properties/desired") ||
               under(topic, "$iothub/methods/POST");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const int accesses[] = { MOSQ_ACL_READ, MOSQ_ACL_WRITE, MOSQ_ACL_SUBSCRIBE, MOSQ_ACL_UNSUBSCRIBE };
        char buf[4096];
        Client c;

        log_set_max_level(LOG_CRIT);
        if (size < 1 || size >= sizeof(buf))
                return 0;
        uint8_t flags = data[0];
        memcpy(buf, data + 1, size - 1);
        buf[size - 1] = '\0';

        char *topic = strchr(buf, '\n');
        if (!topic)
                return 0;
        *topic++ = '\0';
        const char *client_id = buf;
        int access = accesses[flags & 3];

        (void) client_classify(flags & 4 ? SOCK : "192.0.2.1", SOCK,
                               flags & 8 ? "$edgehub/fuzz" : "hub/x/?api-version=1", client_id, &c);

        bool allowed = acl_decide(&c, access, topic) == MOSQ_ERR_SUCCESS;
        if (allowed != oracle_allows(&c, access, topic))
                abort();

        if (c.kind >= 0) {
                Message m = MESSAGE_NULL;
                if (message_classify(&c, client_id, topic, topic, strlen(topic), &m) == 0 &&
                    m.kind == MESSAGE_TELEMETRY) {
                        /* Stored telemetry is always the sender's own, on a topic it may write. */
                        if (c.kind == CLIENT_INTERNAL || acl_decide(&c, MOSQ_ACL_WRITE, topic) != MOSQ_ERR_SUCCESS)
                                abort();
                        if (!m.properties)
                                abort();
                }
                message_deinit(&m);
        }
        return 0;
}
