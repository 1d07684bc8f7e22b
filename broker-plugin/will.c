/* MQTT Wills: only on the sender's own telemetry topic, stored and forwarded like telemetry */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "broker-plugin/broker-api.h"
#include "broker-plugin/message.h"
#include "broker-plugin/plugin.h"
#include "broker-plugin/will.h"
#include "proto/iothub/property-bag.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

/*
 * mosquitto 2.0.11 publishes a Will straight into its subscription tree
 * after one write check (src/context.c context__send_will(), through
 * db__messages_easy_queue()): no MOSQ_EVT_MESSAGE, so message.c never sees
 * it. Denying that check is the only way to stop it; we take the payload
 * from the check itself and store it the way message.c stores telemetry.
 * A Will on any other topic (a method answer, a twin request, another
 * identity's topic) is dropped here and reaches nobody.
 */

int will_properties(const char *bag, char **ret) {
        _cleanup_(property_bag_deinit) PropertyBag b = {};
        int r;

        r = property_bag_parse(bag, strlen(bag), &b);
        if (r < 0)
                return r;
        r = property_bag_set(&b, WILL_PROPERTY_KEY, WILL_PROPERTY_VALUE);
        if (r < 0)
                return r;
        return property_bag_format(&b, ret);
}

static int will_store(Plugin *p, const char *identity, const Message *m, const struct mosquitto_evt_acl_check *ed) {
        _cleanup_free_ char *properties = NULL;
        int r;

        r = will_properties(m->properties ? m->properties : "", &properties);
        if (r < 0)
                return r;
        return ingest_append(&p->ingest, identity, properties, ed->payload, ed->payloadlen, m->output);
}

int will_handle(Plugin *p, const Client *sender, const struct mosquitto_evt_acl_check *ed) {
        _cleanup_(message_deinit) Message m = MESSAGE_NULL;
        const char *client_id = mosquitto_client_id(ed->client);
        int r;

        if (!client_id || !ed->topic)
                return MOSQ_ERR_ACL_DENIED;
        r = message_classify(sender, client_id, ed->topic, ed->payload, ed->payloadlen, &m);
        if (r < 0 || m.kind != MESSAGE_TELEMETRY) {
                log_ratelimit(&p->message_ratelimit, LOG_INFO, "Will of '%s' on '%s' dropped: %s", client_id,
                              ed->topic, r < 0 ? strerror(-r) : "not the sender's own telemetry topic");
                return MOSQ_ERR_ACL_DENIED;
        }

        r = will_store(p, client_id, &m, ed);
        if (r < 0)
                log_ratelimit_warning(&p->store_ratelimit, "Will of '%s' not stored: %s", client_id, strerror(-r));
        else
                log_debug("Stored the Will of '%s' (%" PRIu32 " bytes)", client_id, ed->payloadlen);
        /* Stored or not, the broker must not publish it itself. */
        return MOSQ_ERR_ACL_DENIED;
}
