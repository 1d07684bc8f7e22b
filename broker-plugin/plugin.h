/* The plugin's one context: the state every callback shares */
#pragma once

#include <inttypes.h>
#include <stdbool.h>

#include "broker-plugin/backend.h"
#include "broker-plugin/identity.h"
#include "broker-plugin/ingest-append.h"
#include "broker-plugin/presence.h"
#include "broker-plugin/token-expiry.h"
#include "broker-plugin/watchdog.h"
#include "proto/runtime/config.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

struct mosquitto;
struct mosquitto_opt;
typedef struct mosquitto_plugin_id_t mosquitto_plugin_id_t;

/*
 * Allocated by mosquitto_plugin_init(), handed to every callback as
 * userdata, freed by mosquitto_plugin_cleanup() (STYLE.md §7). All of it is
 * touched only on the broker's thread.
 */
typedef struct Plugin {
        mosquitto_plugin_id_t *identifier;
        bool registered;        /* our callbacks are registered with the broker */

        Config *config;
        char *broker_socket;    /* runtime_dir/broker.sock: our daemons' listener */
        Backend backend;
        IngestAppend ingest;    /* telemetry: the ingest log hub-store imports */
        Presence presence;
        TokenExpiry expiry;     /* admitted device connections: token deadlines, and who is live (will.c) */

        Watchdog watchdog;

        RateLimit auth_ratelimit;
        RateLimit store_ratelimit;
        RateLimit message_ratelimit;
} Plugin;

#define PLUGIN_AUTH_TIMEOUT_MSEC_DEFAULT 1000u
#define PLUGIN_TIMEOUT_MSEC_MAX 60000u

/* Parses the plugin_opt_* options (keys without the prefix), loads the shared config, connects nothing yet. */
int plugin_new(Plugin **ret, mosquitto_plugin_id_t *identifier, const struct mosquitto_opt *options,
               int option_count);
Plugin *plugin_free(Plugin *p);

static inline const char *strna(const char *s) {
        return s ? s : "n/a";
}

DEFINE_CLEANUP_FUNC(Plugin, plugin_free);
