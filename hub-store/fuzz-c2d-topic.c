/* Fuzz target: the cloud's cloud-to-device topic, parsed for a device, with a format round trip */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub-store/upstream-topic.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: "{device id}\n{topic}". A topic that parses for the device has a
 * canonical bag; formatting that bag for the device and parsing the result
 * gives the same bag.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *input = NULL, *props = NULL, *topic = NULL, *again = NULL;

        log_set_max_level(LOG_CRIT);
        if (size > 8192)
                return 0;
        input = strndup((const char *) data, size);
        if (!input)
                return 0;
        char *nl = strchr(input, '\n');
        const char *device = "dev-1", *t = input;
        if (nl) {
                *nl = '\0';
                device = input;
                t = nl + 1;
        }

        if (c2d_topic_parse(t, device, &props) < 0)
                return 0;
        if (c2d_topic_format(device, props, &topic) < 0)
                abort();
        if (c2d_topic_parse(topic, device, &again) < 0 || strcmp(props, again) != 0)
                abort();
        return 0;
}
