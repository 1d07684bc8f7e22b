/* IoT Hub property bags: the "k=v&k2=v2" end of a telemetry topic (proto/iothub/device-topic.h) */
#pragma once

#include <stddef.h>

#define PROPERTY_BAG_MAX 8192u     /* encoded bytes */
#define PROPERTY_BAG_ENTRIES_MAX 64u

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
