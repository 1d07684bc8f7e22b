/* IoT Hub device topics: a device's telemetry and a module's output */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/device-topic.h"
#include "proto/iothub/iot-identity.h"
#include "proto/util/cleanup.h"

#define EVENTS_SUFFIX "messages/events/"

void device_topic_deinit(DeviceTopic *t) {
        if (!t)
                return;
        free(t->device_id);
        free(t->module_id);
        free(t->bag);
        *t = DEVICE_TOPIC_NULL;
}

/* Takes "{id}/" off the front of *p; ids never contain '/'. */
static int take_id(const char **p, char **ret) {
        const char *slash = strchr(*p, '/');
        if (!slash)
                return -EINVAL;

        _cleanup_free_ char *id = strndup(*p, (size_t) (slash - *p));
        if (!id)
                return -ENOMEM;
        if (!iot_id_is_valid(id))
                return -EINVAL;

        *p = slash + 1;
        *ret = TAKE_PTR(id);
        return 0;
}

static bool take_prefix(const char **p, const char *prefix) {
        size_t n = strlen(prefix);
        if (strncmp(*p, prefix, n) != 0)
                return false;
        *p += n;
        return true;
}

int device_topic_parse(const char *topic, DeviceTopic *ret) {
        _cleanup_free_ char *device = NULL, *module = NULL, *bag = NULL;
        TopicKind kind = TOPIC_TELEMETRY;
        const char *p = topic;
        int r;

        if (!topic || !ret || !take_prefix(&p, "devices/"))
                return -EINVAL;
        r = take_id(&p, &device);
        if (r < 0)
                return r;
        if (take_prefix(&p, "modules/")) {
                kind = TOPIC_MODULE_OUTPUT;
                r = take_id(&p, &module);
                if (r < 0)
                        return r;
        }
        if (!take_prefix(&p, EVENTS_SUFFIX))
                return -EINVAL;

        /* SDKs may end the bag with '/' (as on devicebound topics); it is not part of it. */
        size_t n = strlen(p);
        if (n > 0 && p[n - 1] == '/')
                n--;
        bag = strndup(p, n);
        if (!bag)
                return -ENOMEM;

        *ret = (DeviceTopic){
                .kind = kind,
                .device_id = TAKE_PTR(device),
                .module_id = TAKE_PTR(module),
                .bag = TAKE_PTR(bag),
        };
        return 0;
}
