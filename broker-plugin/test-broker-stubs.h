/* Stand-ins for the broker functions the plugin's callbacks call (unit tests only) */
#pragma once

#include <stdbool.h>

/* The broker's struct is opaque to the plugin; the tests define their own. */
struct mosquitto {
        const char *id;
        const char *address;
        const char *username;
        void *cert;             /* X509 *: what mosquitto_client_certificate() returns (a new reference) */
};

/* The last client id passed to mosquitto_kick_client_by_clientid(), and how many kicks. */
extern char stub_kicked[256];
extern unsigned stub_kick_count;
/* Client ids the fake broker has connected (kick returns NOT_FOUND for others). */
extern const char *stub_connected[8];

/* What the last mosquitto_broker_publish_copy() was asked to do, and how often. */
extern char stub_published_client[256];
extern char stub_published_topic[256];
extern unsigned stub_publish_count;

/*
 * Each publish with a user property (an announcement on the bus), as
 * "{topic} {user property client} {payload}", prefixed "@{client id} " when
 * sent to one client only, oldest first; stub_announce_take() returns the
 * next one not taken yet (NULL when none) and consumes it.
 */
#define STUB_ANNOUNCED_MAX 16
extern char stub_announced[STUB_ANNOUNCED_MAX][256];
extern unsigned stub_announce_count;
const char *stub_announce_take(void);
void stub_announce_reset(void);
