/* MQTT Wills: only on the sender's own telemetry topic, stored and forwarded like telemetry */
#pragma once

#include <stdbool.h>

#include "broker-plugin/identity.h"

struct mosquitto_evt_acl_check;
typedef struct Plugin Plugin;

/* IoT Hub marks a device's Will with this application property. */
#define WILL_PROPERTY_KEY "iothub-MessageType"
#define WILL_PROPERTY_VALUE "Will"

/*
 * A device's or module's write check that no live connection of it asked for
 * (token-expiry.h explains why that is a Will). Never lets the broker publish
 * it: a Will on the sender's own telemetry topic goes to the store as
 * telemetry marked WILL_PROPERTY_KEY=WILL_PROPERTY_VALUE, anything else is
 * dropped. Returns MOSQ_ERR_ACL_DENIED.
 */
int will_handle(Plugin *p, const Client *sender, const struct mosquitto_evt_acl_check *ed);

/* The properties a Will is stored with: the topic's bag plus the Will mark, in canonical form. -EINVAL, -ENOMEM. */
int will_properties(const char *bag, char **ret);
