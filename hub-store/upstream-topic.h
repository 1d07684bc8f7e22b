/* The IoT Hub telemetry topic a stored message is published on */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * Largest payload we publish upstream: IoT Hub refuses device-to-cloud
 * messages over 256 KiB by closing the connection, which would make such a
 * record block its identity's queue forever (we resend it on every connect).
 */
#define UPSTREAM_PAYLOAD_MAX (256u * 1024u)

/*
 * devices/{d}/messages/events/{bag} or devices/{d}/modules/{m}/messages/events/{bag}.
 * properties is the canonical bag stored with the message; a module output
 * name becomes "$.on" unless the bag has one. -EINVAL on bad ids or bag.
 */
int upstream_topic_format(const char *device_id, const char *module_id, const char *properties,
                          const char *output, char **ret);

/*
 * A module input as the module SDKs subscribe to it:
 * devices/{edge}/modules/{m}/inputs/{input}/{bag}, the bag carrying
 * "$.cdid"/"$.cmid" of the sending identity ("d" or "d/m").
 */
int local_input_topic_format(const char *edge_device_id, const char *module_id, const char *input,
                             const char *properties, const char *sender, char **ret);

/* devices/{d}/messages/devicebound/{bag}: a cloud-to-device message. */
int c2d_topic_format(const char *device_id, const char *properties, char **ret);
/* The canonical bag of a cloud-to-device topic for device_id; -EINVAL when it is not one. */
int c2d_topic_parse(const char *topic, const char *device_id, char **ret_properties);

/* The canonical bag with key=value set (replace: over any value it had). */
int bag_with(const char *properties, const char *key, const char *value, bool replace, char **ret);
