/* What a route condition sees of a message: its sender, output and properties */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/iot-identity.h"
#include "proto/iothub/route-message.h"
#include "proto/util/cleanup.h"

typedef struct SystemPropertyInfo {
        const char *name;    /* in conditions, after '$' */
        const char *bag_key; /* in property bags (IoT Hub's MQTT names) */
} SystemPropertyInfo;

static const SystemPropertyInfo system_properties[_ROUTE_SYS_MAX] = {
        [ROUTE_SYS_MESSAGE_ID] = { "messageId", "$.mid" },
        [ROUTE_SYS_CORRELATION_ID] = { "correlationId", "$.cid" },
        [ROUTE_SYS_USER_ID] = { "userId", "$.uid" },
        [ROUTE_SYS_CONTENT_TYPE] = { "contentType", "$.ct" },
        [ROUTE_SYS_CONTENT_ENCODING] = { "contentEncoding", "$.ce" },
        [ROUTE_SYS_TO] = { "to", "$.to" },
        [ROUTE_SYS_OUTPUT_NAME] = { "outputName", "$.on" },
        [ROUTE_SYS_CONNECTION_DEVICE_ID] = { "connectionDeviceId", "$.cdid" },
        [ROUTE_SYS_CONNECTION_MODULE_ID] = { "connectionModuleId", "$.cmid" },
};

RouteSystemProperty route_system_property_from_string(const char *name, size_t len) {
        if (!name)
                return _ROUTE_SYS_INVALID;
        /* Case-sensitive, like edgeHub's and IoT Hub's system property names. */
        for (size_t i = 0; i < _ROUTE_SYS_MAX; i++)
                if (strlen(system_properties[i].name) == len && memcmp(system_properties[i].name, name, len) == 0)
                        return (RouteSystemProperty) i;
        return _ROUTE_SYS_INVALID;
}

const char *route_system_property_to_string(RouteSystemProperty p) {
        return p >= 0 && p < _ROUTE_SYS_MAX ? system_properties[p].name : NULL;
}

const char *route_system_property_bag_key(RouteSystemProperty p) {
        return p >= 0 && p < _ROUTE_SYS_MAX ? system_properties[p].bag_key : NULL;
}

void route_message_deinit(RouteMessage *m) {
        if (!m)
                return;
        property_bag_deinit(&m->properties);
        free(m->device_buf);
        free(m->module_buf);
        free(m->output_buf);
        *m = ROUTE_MESSAGE_NULL;
}

int route_message_init(RouteMessage *ret, const char *identity, const char *bag, size_t bag_len,
                       const char *output_name) {
        _cleanup_(route_message_deinit) RouteMessage m = ROUTE_MESSAGE_NULL;
        int r;

        if (!ret || !identity)
                return -EINVAL;
        r = iot_identity_split(identity, &m.device_buf, &m.module_buf);
        if (r < 0)
                return r;
        r = property_bag_parse(bag, bag_len, &m.properties);
        if (r < 0)
                return r;
        if (output_name) {
                m.output_buf = strdup(output_name);
                if (!m.output_buf)
                        return -ENOMEM;
        }
        m.device_id = m.device_buf;
        m.module_id = m.module_buf;
        m.output_name = m.output_buf ?: property_bag_get(&m.properties, "$.on");

        *ret = m;
        m = ROUTE_MESSAGE_NULL;
        return 0;
}

const char *route_message_get_property(const RouteMessage *m, const char *name) {
        if (!m || !name || name[0] == '$')
                return NULL; /* "$."-keys are system properties, reached by route_message_get_system() */
        return property_bag_get(&m->properties, name);
}

const char *route_message_get_system(const RouteMessage *m, RouteSystemProperty p) {
        if (!m || p < 0 || p >= _ROUTE_SYS_MAX)
                return NULL;
        switch (p) {
        case ROUTE_SYS_CONNECTION_DEVICE_ID:
                if (m->device_id)
                        return m->device_id;
                break;
        case ROUTE_SYS_CONNECTION_MODULE_ID:
                /* A known device sender has no module: the bag must not add one. */
                if (m->device_id)
                        return m->module_id;
                break;
        case ROUTE_SYS_OUTPUT_NAME:
                if (m->output_name)
                        return m->output_name;
                break;
        default:
                break;
        }
        return property_bag_get(&m->properties, system_properties[p].bag_key);
}
