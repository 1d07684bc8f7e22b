/* IoT Hub device topics and property bags */
#pragma once

#include <stddef.h>

/*
 * Telemetry:      devices/{d}/messages/events/{bag}
 * Module output:  devices/{d}/modules/{m}/messages/events/{bag}   ($.on = output)
 * {bag} is "k=v&k2=v2", both sides url-encoded, possibly empty, possibly
 * ending in '/'. System properties start with "$." ($.mid, $.cid, $.ct, $.ce,
 * $.on, $.to, $.uid, $.exp, ...). Parsed once, here (fuzz-topic.c).
 */
#define PROPERTY_BAG_MAX 8192u     /* encoded bytes */
#define PROPERTY_BAG_ENTRIES_MAX 64u

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

typedef struct Property {
        char *key;    /* decoded */
        char *value;  /* decoded; "" for a key without '=' */
} Property;

typedef struct PropertyBag {
        size_t n;
        Property entries[PROPERTY_BAG_ENTRIES_MAX];
} PropertyBag;

/* Decodes a bag. -EINVAL on bad escapes or empty keys; -E2BIG over the limits. */
int property_bag_parse(const char *s, size_t len, PropertyBag *ret);
void property_bag_deinit(PropertyBag *b);
/* Value of key, or NULL. */
const char *property_bag_get(const PropertyBag *b, const char *key);
/* Replaces key's value, or adds key. -E2BIG when the bag is full. */
int property_bag_set(PropertyBag *b, const char *key, const char *value);
void property_bag_remove(PropertyBag *b, const char *key);
/* Encodes in canonical form: parse(format(b)) == b. */
int property_bag_format(const PropertyBag *b, char **ret);
