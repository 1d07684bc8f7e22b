/* Fuzz target: device topics and property bags, with format/parse round trips */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/device-topic.h"
#include "proto/iothub/iot-identity.h"
#include "proto/iothub/property-bag.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_round_trip(const PropertyBag *b) {
        _cleanup_free_ char *s = NULL;
        PropertyBag b2 = {};

        /* Not assert(): the invariants must hold in -DNDEBUG builds too. */
        if (property_bag_format(b, &s) < 0)
                abort();
        int r = property_bag_parse(s, strlen(s), &b2);
        if (strlen(s) > PROPERTY_BAG_MAX) {
                /* Escaping may grow a bag past the limit; then parse must say so. */
                if (r != -E2BIG)
                        abort();
                return;
        }
        if (r < 0 || b2.n != b->n)
                abort();
        for (size_t i = 0; i < b->n; i++)
                if (strcmp(b->entries[i].key, b2.entries[i].key) != 0 ||
                    strcmp(b->entries[i].value, b2.entries[i].value) != 0)
                        abort();
        property_bag_deinit(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        DeviceTopic t = DEVICE_TOPIC_NULL;
        PropertyBag b = {};

        log_set_max_level(LOG_CRIT);
        if (size > 65535) /* an MQTT topic */
                return 0;

        _cleanup_free_ char *topic = strndup((const char *) data, size);
        if (!topic)
                return 0;
        if (device_topic_parse(topic, &t) >= 0) {
                if (!iot_id_is_valid(t.device_id) || (t.kind == TOPIC_MODULE_OUTPUT) != !!t.module_id ||
                    (t.module_id && !iot_id_is_valid(t.module_id)))
                        abort();
                if (property_bag_parse(t.bag, strlen(t.bag), &b) >= 0) {
                        check_round_trip(&b);
                        property_bag_deinit(&b);
                }
                device_topic_deinit(&t);
        }

        /* The raw bytes as a bag too: NULs and all. */
        if (property_bag_parse((const char *) data, size, &b) >= 0) {
                if (b.n > PROPERTY_BAG_ENTRIES_MAX)
                        abort();
                for (size_t i = 0; i < b.n; i++)
                        (void) property_bag_get(&b, b.entries[i].key);
                check_round_trip(&b);
                property_bag_deinit(&b);
        }
        return 0;
}
