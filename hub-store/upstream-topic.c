/* The IoT Hub telemetry topic a stored message is published on */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub-store/upstream-topic.h"
#include "proto/iothub/iot-identity.h"
#include "proto/iothub/property-bag.h"
#include "proto/util/cleanup.h"

/* The canonical bag with key=value set (replace: over any value it had). */
int bag_with(const char *properties, const char *key, const char *value, bool replace, char **ret) {
        _cleanup_(property_bag_deinit) PropertyBag bag = {};
        int r;

        r = property_bag_parse(properties, strlen(properties), &bag);
        if (r < 0)
                return r;
        if (replace || !property_bag_get(&bag, key)) {
                r = property_bag_set(&bag, key, value);
                if (r < 0)
                        return r;
        }
        return property_bag_format(&bag, ret);
}

int local_input_topic_format(const char *edge_device_id, const char *module_id, const char *input,
                             const char *properties, const char *sender, char **ret) {
        _cleanup_(property_bag_deinit) PropertyBag bag = {};
        _cleanup_free_ char *device = NULL, *module = NULL, *formatted = NULL;
        int r;

        r = iot_identity_split(sender, &device, &module);
        if (r < 0)
                return r;
        if (!iot_id_is_valid(edge_device_id) || !iot_id_is_valid(module_id) || !*input || strpbrk(input, "/+#"))
                return -EINVAL;
        if (!properties)
                properties = "";
        r = property_bag_parse(properties, strlen(properties), &bag);
        if (r < 0)
                return r;
        /* The connection's identity, never what the sender claimed (IoT Hub stamps them too). */
        property_bag_remove(&bag, "$.cmid");
        r = property_bag_set(&bag, "$.cdid", device);
        if (r >= 0 && module)
                r = property_bag_set(&bag, "$.cmid", module);
        if (r >= 0)
                r = property_bag_format(&bag, &formatted);
        if (r < 0)
                return r;
        if (asprintf(ret, "devices/%s/modules/%s/inputs/%s/%s", edge_device_id, module_id, input, formatted) < 0)
                return -ENOMEM;
        return 0;
}

int c2d_topic_format(const char *device_id, const char *properties, char **ret) {
        if (!iot_id_is_valid(device_id))
                return -EINVAL;
        if (asprintf(ret, "devices/%s/messages/devicebound/%s", device_id, properties ? properties : "") < 0)
                return -ENOMEM;
        return 0;
}

int c2d_topic_parse(const char *topic, const char *device_id, char **ret_properties) {
        _cleanup_(property_bag_deinit) PropertyBag bag = {};
        _cleanup_free_ char *prefix = NULL;
        int r;

        if (asprintf(&prefix, "devices/%s/messages/devicebound", device_id) < 0)
                return -ENOMEM;
        size_t n = strlen(prefix);
        if (strncmp(topic, prefix, n) != 0 || (topic[n] != '\0' && topic[n] != '/'))
                return -EINVAL;
        const char *raw = topic[n] == '/' ? topic + n + 1 : "";
        r = property_bag_parse(raw, strlen(raw), &bag);
        if (r < 0)
                return r;
        return property_bag_format(&bag, ret_properties);
}

int upstream_topic_format(const char *device_id, const char *module_id, const char *properties,
                          const char *output, char **ret) {
        _cleanup_free_ char *bag = NULL;
        char *topic;
        int r;

        if (!iot_id_is_valid(device_id) || (module_id && !iot_id_is_valid(module_id)))
                return -EINVAL;
        if (!properties)
                properties = "";
        if (output && *output) {
                r = bag_with(properties, "$.on", output, false, &bag);
                if (r < 0)
                        return r;
                properties = bag;
        }

        if (module_id)
                r = asprintf(&topic, "devices/%s/modules/%s/messages/events/%s", device_id, module_id, properties);
        else
                r = asprintf(&topic, "devices/%s/messages/events/%s", device_id, properties);
        if (r < 0)
                return -ENOMEM;
        *ret = topic;
        return 0;
}
