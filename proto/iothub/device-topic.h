/* IoT Hub device topics: a device's telemetry and a module's output */
#pragma once

/*
 * Telemetry:      devices/{d}/messages/events/{bag}
 * Module output:  devices/{d}/modules/{m}/messages/events/{bag}   ($.on = output)
 * {bag} is "k=v&k2=v2", both sides url-encoded, possibly empty, possibly
 * ending in '/'. System properties start with "$." ($.mid, $.cid, $.ct, $.ce,
 * $.on, $.to, $.uid, $.exp, ...). Parsed once, here (fuzz-topic.c).
 */
typedef enum TopicKind {
        TOPIC_TELEMETRY,       /* a device's events */
        TOPIC_MODULE_OUTPUT,   /* a module's events */
        _TOPIC_KIND_MAX,
        _TOPIC_KIND_INVALID = -22, /* -EINVAL */
} TopicKind;

typedef struct DeviceTopic {
        TopicKind kind;
        char *device_id;
        char *module_id;   /* NULL for TOPIC_TELEMETRY */
        char *bag;         /* the raw property bag, without a trailing '/' ("" if none) */
} DeviceTopic;

#define DEVICE_TOPIC_NULL ((DeviceTopic){ .kind = _TOPIC_KIND_INVALID })

/* -EINVAL when the topic is not a telemetry topic or ids are invalid. */
int device_topic_parse(const char *topic, DeviceTopic *ret);
void device_topic_deinit(DeviceTopic *t);
