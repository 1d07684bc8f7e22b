/* What a route condition sees of a message: its sender, output and properties */
#pragma once

#include <stddef.h>

#include "proto/iothub/property-bag.h"

/*
 * Built once per stored message and evaluated against every route: hub-store
 * has the identity ("d" or "d/m"), the url-encoded property bag as
 * property_bag_format() wrote it ("a=1&%24.ct=application%2Fjson") and the
 * output name; route_message_init() splits and decodes them once.
 *
 * Device telemetry has no module_id; a module's output has one (and usually
 * an output name). The connection ids come from the authenticated identity,
 * never from "$.cdid"/"$.cmid" in the bag when an identity is given: a device
 * must not route as somebody else by writing a property.
 */
typedef enum RouteSystemProperty {
        ROUTE_SYS_MESSAGE_ID,           /* $messageId        $.mid */
        ROUTE_SYS_CORRELATION_ID,       /* $correlationId    $.cid */
        ROUTE_SYS_USER_ID,              /* $userId           $.uid */
        ROUTE_SYS_CONTENT_TYPE,         /* $contentType      $.ct */
        ROUTE_SYS_CONTENT_ENCODING,     /* $contentEncoding  $.ce */
        ROUTE_SYS_TO,                   /* $to               $.to */
        ROUTE_SYS_OUTPUT_NAME,          /* $outputName       output_name, else $.on */
        ROUTE_SYS_CONNECTION_DEVICE_ID, /* $connectionDeviceId  device_id, else $.cdid */
        ROUTE_SYS_CONNECTION_MODULE_ID, /* $connectionModuleId  module_id, else $.cmid */
        _ROUTE_SYS_MAX,
        _ROUTE_SYS_INVALID = -22, /* -EINVAL */
} RouteSystemProperty;

typedef struct RouteMessage {
        const char *device_id;   /* NULL only if unknown */
        const char *module_id;   /* NULL: device telemetry */
        const char *output_name; /* NULL: none */
        PropertyBag properties;  /* application properties and "$."-keyed system properties */

        /* owned copies behind the pointers above (route_message_init()) */
        char *device_buf;
        char *module_buf;
        char *output_buf;
} RouteMessage;

#define ROUTE_MESSAGE_NULL ((RouteMessage){})

/*
 * identity: "d" or "d/m"; bag: url-encoded (may be NULL with bag_len 0);
 * output_name: NULL to take the bag's "$.on". -EINVAL on a malformed
 * identity or bag, -E2BIG for a bag over the topic.h limits.
 */
int route_message_init(RouteMessage *ret, const char *identity, const char *bag, size_t bag_len,
                       const char *output_name);
void route_message_deinit(RouteMessage *m);

/* An application property by name, or NULL. */
const char *route_message_get_property(const RouteMessage *m, const char *name);
/* A system property, or NULL when the message has none. */
const char *route_message_get_system(const RouteMessage *m, RouteSystemProperty p);

/* "contentType" (the name after '$' in a condition) <-> enum; property_bag key ("$.ct"). */
RouteSystemProperty route_system_property_from_string(const char *name, size_t len);
const char *route_system_property_to_string(RouteSystemProperty p);
const char *route_system_property_bag_key(RouteSystemProperty p);
