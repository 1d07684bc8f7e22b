/* The IoT Hub telemetry topic a stored message is published on */
#pragma once

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
