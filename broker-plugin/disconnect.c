/* A device or module went away: tell the daemons on the bus */
#include <string.h>

#include "broker-plugin/broker-api.h"
#include "broker-plugin/bus-relay.h"
#include "broker-plugin/disconnect.h"
#include "broker-plugin/plugin.h"
#include "proto/ipc/bus.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

/*
 * The presence table (presence.h) decides whether this is the end of an
 * identity's last admitted connection; refused clients, internal clients and
 * the repeated ends mosquitto 2.0.11 reports were never admitted there or
 * are already gone from it. Broker shutdown frees connections without this
 * event (src/mosquitto.c calls context__cleanup() directly).
 */
int disconnect_callback(int event, void *event_data, void *userdata) {
        struct mosquitto_evt_disconnect *ed = event_data;
        _cleanup_free_ char *identity = NULL;
        Plugin *p = userdata;

        /* Before the broker checks this connection's Will (will.h). */
        token_expiry_remove(&p->expiry, ed->client);
        if (presence_remove(&p->presence, ed->client, &identity) <= 0) {
                const char *id = mosquitto_client_id(ed->client);
                if (id)
                        log_debug("End of a connection of '%s' that is not the identity's last, ignoring", id);
                return MOSQ_ERR_SUCCESS;
        }

        log_debug("Client '%s' disconnected", identity);
        bus_relay_announce(p, BUS_TOPIC_PRESENCE, identity, "disconnected");
        return MOSQ_ERR_SUCCESS;
}
