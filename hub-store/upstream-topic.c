/* The IoT Hub telemetry topic a stored message is published on */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub-store/upstream-topic.h"
#include "proto/cleanup.h"
#include "proto/sas.h"
#include "proto/topic.h"

/* The bag with "$.on=output" added, canonical. */
static int bag_with_output(const char *properties, const char *output, char **ret) {
        _cleanup_(property_bag_deinit) PropertyBag bag = {};
        int r;

        r = property_bag_parse(properties, strlen(properties), &bag);
        if (r < 0)
                return r;
        if (property_bag_get(&bag, "$.on"))
                return property_bag_format(&bag, ret);
        if (bag.n >= PROPERTY_BAG_ENTRIES_MAX)
                return -E2BIG;
        _cleanup_free_ char *k = strdup("$.on"), *v = strdup(output);
        if (!k || !v)
                return -ENOMEM;
        bag.entries[bag.n++] = (Property) { .key = TAKE_PTR(k), .value = TAKE_PTR(v) };
        return property_bag_format(&bag, ret);
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
                r = bag_with_output(properties, output, &bag);
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
