/* The internal bus: our daemons as MQTT v5 clients of the local broker */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "proto/util/cleanup.h"

/*
 * A libmosquitto client driven from sd-event (proto/runtime/mosq-event.h) on the
 * broker's internal Unix-socket listener, as username "$edgehub/{name}" and
 * client id "$edgehub-{name}". The broker plugin trusts such clients and
 * lets them publish and subscribe under "$edgehub/" only.
 *
 * The connection is kept up forever: it reconnects with jittered backoff
 * and subscribes again each time. Each connection uses a fresh client with
 * a clean session, so libmosquitto never resends on its own (a resend after
 * a reconnect would duplicate what the caller retries itself): a publish
 * still unacknowledged when the connection drops completes with -ECONNRESET.
 *
 * The topics and user properties of the bus are listed below; README.md
 * ("The internal bus") explains each flow.
 */
#define BUS_TOPIC_DELIVER "$edgehub/deliver"     /* to one device: properties client, topic */
#define BUS_TOPIC_UPSTREAM "$edgehub/upstream"   /* to the cloud as an identity: client, topic */
#define BUS_TOPIC_LINK "$edgehub/link"           /* upstream link of client: "up" or "down" */
#define BUS_TOPIC_LINK_QUERY "$edgehub/link-query" /* hub-store announces every link that is up again */
#define BUS_TOPIC_PRESENCE "$edgehub/presence"   /* client "connected" or "disconnected" */
#define BUS_TOPIC_PRESENCE_QUERY "$edgehub/presence-query" /* the plugin announces every connected client again */
#define BUS_TOPIC_SUBSCRIBE "$edgehub/subscribe" /* client subscribed to the filter in the payload */
#define BUS_TOPIC_KICK "$edgehub/kick"           /* payload: the client id to disconnect */
#define BUS_PREFIX_DEVICE "$edgehub/device/"     /* a device's "$iothub/{rest}" as "$edgehub/device/{rest}" */
#define BUS_PREFIX_CLOUD "$edgehub/cloud/"       /* the cloud's "$iothub/{rest}" as "$edgehub/cloud/{rest}" */
#define BUS_PROPERTY_CLIENT "client"
#define BUS_PROPERTY_TOPIC "topic"

/* An identity's upstream link as BUS_TOPIC_LINK announces it; UNKNOWN until announced. */
typedef enum BusLinkState {
        BUS_LINK_UNKNOWN,
        BUS_LINK_UP,
        BUS_LINK_DOWN,
} BusLinkState;

/* "up", "down" (the payloads) or "unknown". */
const char *bus_link_state_to_string(BusLinkState s);
/* A BUS_TOPIC_LINK payload: UP, DOWN, or UNKNOWN for anything else. */
BusLinkState bus_link_state_from_payload(const void *payload, size_t len);

/*
 * Request ids ($rid) for what a daemon sends on the bus and matches answers
 * to: "{tag}{8 random hex digits}-{n}". The random part differs per start,
 * so a late answer to a previous run matches nothing.
 */
typedef struct BusRequestIds {
        char prefix[24];
        uint64_t counter;
} BusRequestIds;

/* tag: a few letters naming the daemon ("" for none). */
void bus_request_ids_init(BusRequestIds *ids, const char *tag);
/* The next id; NULL when out of memory. */
char *bus_request_id_next(BusRequestIds *ids);

/* PUBACK reason codes that matter on the bus (MQTT v5). */
#define BUS_REASON_SUCCESS 0x00
#define BUS_REASON_NO_SUBSCRIBERS 0x10
#define BUS_REASON_NOT_AUTHORIZED 0x87 /* $edgehub/deliver: the target is not connected */

typedef struct Bus Bus;

typedef struct BusMessage {
        const char *topic;
        const void *payload;
        size_t len;
        const char *client; /* user property "client", or NULL */
        const char *target; /* user property "topic", or NULL */
} BusMessage;

/*
 * A BUS_TOPIC_PRESENCE message: 0 and *ret_connected for "connected" or
 * "disconnected" from a named client; -EBADMSG for anything else.
 */
int bus_presence_parse(const BusMessage *m, bool *ret_connected);

typedef struct BusHandlers {
        void (*message)(Bus *b, const BusMessage *m, void *userdata);
        /* Subscriptions are in place; publish what was waiting for the bus. */
        void (*connected)(Bus *b, void *userdata);
        void (*disconnected)(Bus *b, void *userdata);
} BusHandlers;

/* reason: the PUBACK reason code (>= 0), or -ECONNRESET when the connection was lost first. */
typedef void (*BusPublishDone)(Bus *b, int reason, void *userdata);

int bus_new(Bus **ret, sd_event *e, const char *socket_path, const char *name, const BusHandlers *h,
            void *userdata);
Bus *bus_free(Bus *b);

/* Subscribes now and after every reconnect (QoS 1). Call before bus_start(). */
int bus_add_subscription(Bus *b, const char *filter);
/* Starts connecting (from the event loop). */
int bus_start(Bus *b);
bool bus_connected(const Bus *b);

/*
 * Publishes at QoS 1 with the user properties client and topic where not
 * NULL. -ENOTCONN when the bus is down: nothing was sent and done is not
 * called. Otherwise done (if set) is called exactly once, from the event
 * loop, unless bus_forget() is called for its userdata first.
 */
int bus_publish(Bus *b, const char *topic, const void *payload, size_t len, const char *client,
                const char *target, BusPublishDone done, void *userdata);
/* The publishes of this userdata complete silently (it is going away). */
void bus_forget(Bus *b, void *userdata);

DEFINE_CLEANUP_FUNC(Bus, bus_free);
