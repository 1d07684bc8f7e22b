/* The plugin's side of the internal bus (proto/ipc/bus.h): requests, directed delivery, presence */
#pragma once

#include "broker-plugin/plugin.h"

struct mosquitto_evt_message;

/*
 * A device's "$iothub/{rest}" (twin requests, method responses and
 * invocations) becomes "$edgehub/device/{rest}" with the one user property
 * client = the sender: the sender's own properties are dropped, so it
 * cannot name another identity. The broker then routes it to the daemon
 * subscribed to it. Returns a MOSQ_ERR_* for the message callback.
 */
int bus_relay_device_request(Plugin *p, const char *client_id, struct mosquitto_evt_message *ed);

/*
 * "$edgehub/deliver" from a daemon: hands the payload to the one client
 * named by the user property client, on the user property topic. Success
 * (PUBACK 0x10 to a v5 sender) once the broker holds it for that connected
 * client; MOSQ_ERR_ACL_DENIED (PUBACK 0x87) when the client is not connected.
 */
int bus_relay_deliver(Plugin *p, struct mosquitto_evt_message *ed);

/* Tells the daemons (topic) about client; payload is a short word or a topic filter. */
void bus_relay_announce(Plugin *p, const char *topic, const char *client, const char *payload);

/*
 * "$edgehub/presence-query" from a daemon (client id asker): sends it alone
 * "connected" on "$edgehub/presence" once for every identity with a live
 * connection. It asks after its subscriptions are in place, so the answer
 * and every later change reach it in order (one thread, one queue). Only
 * the asker: another daemon's view must not change because one restarted
 * (twin-sync reads "connected" without "subscribed" as "do not deliver").
 */
void bus_relay_answer_presence(Plugin *p, const char *asker);
