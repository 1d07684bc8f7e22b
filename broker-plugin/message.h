/* Published messages: telemetry hand-off to hub-store before PUBACK, internal commands */
#pragma once

#include <errno.h>
#include <stddef.h>

#include "broker-plugin/identity.h"

/* IoT Hub's limit for a device-to-cloud message. */
#define MESSAGE_PAYLOAD_MAX (256u * 1024u)

typedef enum MessageKind {
        MESSAGE_TELEMETRY,  /* a device's or module's own events: store, then PUBACK */
        MESSAGE_KICK,       /* an internal request to disconnect a client */
        MESSAGE_PASS,       /* internal traffic: the broker routes it */
        MESSAGE_REQUEST,    /* a device's "$iothub/..." request: relayed to our daemons (bus-relay.h) */
        MESSAGE_DELIVER,    /* an internal request to hand a message to one client (bus-relay.h) */
        MESSAGE_PRESENCE_QUERY, /* a daemon (re)joined the bus: tell it every connected client (bus-relay.h) */
        MESSAGE_OVERSIZE,   /* over MESSAGE_PAYLOAD_MAX: disconnect */
        MESSAGE_MALFORMED,  /* a bad topic, property bag or command: drop */
        MESSAGE_FOREIGN,    /* not the sender's own telemetry topic: drop */
        _MESSAGE_KIND_MAX,
        _MESSAGE_KIND_INVALID = -EINVAL,
} MessageKind;

typedef struct Message {
        MessageKind kind;
        char *properties;  /* TELEMETRY: the property bag in canonical form ("" if none) */
        char *output;      /* TELEMETRY from a module: its "$.on" output name, or NULL */
        char *target;      /* KICK: the client id to disconnect */
        const char *why;   /* MALFORMED, FOREIGN: for the log */
} Message;

#define MESSAGE_NULL ((Message){ .kind = _MESSAGE_KIND_INVALID })

/*
 * Decides what a published message is, from its sender (client_classify()
 * must have succeeded), the sender's client id, the topic and the payload.
 * -ENOMEM only; every other outcome is a kind.
 */
int message_classify(const Client *sender, const char *client_id, const char *topic, const void *payload,
                     size_t len, Message *ret);
void message_deinit(Message *m);

/* MOSQ_EVT_MESSAGE; userdata is the Plugin. */
int message_callback(int event, void *event_data, void *userdata);
