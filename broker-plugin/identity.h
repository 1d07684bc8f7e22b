/* Who a broker client is: a device, a module, or one of our own daemons */
#pragma once

#include <errno.h>
#include <stdbool.h>

#include "proto/iothub/iot-identity.h"

/*
 * Devices and modules are known by their MQTT client id, "{device}" or
 * "{device}/{module}" (IoT Hub requires the client id to be the identity,
 * and auth.c checks that the username names the same one). Our daemons
 * connect on the broker's Unix-socket listener with a username starting
 * with INTERNAL_USERNAME_PREFIX; the socket's folder permissions are what
 * vouch for them. mosquitto 2.0.11 gives such a client the listener's path
 * as its address (src/net.c net__socket_get_address(): getsockname()).
 */
#define INTERNAL_USERNAME_PREFIX "$edgehub/"
/*
 * Client ids an outside client may not take, so that no device can take
 * over a daemon's session ("$edgehub-auth-cache", "$edgehub/hub-store").
 */
#define INTERNAL_CLIENT_ID_PREFIX "$edgehub"
/*
 * What mosquitto 2.0.11 reports as the address of a Unix-socket client when
 * getsockname() fails; otherwise it is the listener's path (src/net.c
 * net__socket_get_address()).
 */
#define UNIX_SOCKET_ADDRESS "unix-socket"

typedef enum ClientKind {
        CLIENT_DEVICE,
        CLIENT_MODULE,
        CLIENT_INTERNAL,
        _CLIENT_KIND_MAX,
        _CLIENT_KIND_INVALID = -EINVAL,
} ClientKind;

typedef struct Client {
        ClientKind kind;
        char device[IOT_ID_MAX + 1];  /* "" for CLIENT_INTERNAL */
        char module[IOT_ID_MAX + 1];  /* "" unless CLIENT_MODULE */
} Client;

#define CLIENT_NULL ((Client){ .kind = _CLIENT_KIND_INVALID })

/*
 * Classifies a client from what the broker knows about it; no allocation,
 * so it can run on every ACL check. broker_socket is the path of our
 * internal listener. -EPERM: an internal username from elsewhere, or an
 * outside client with an internal client id; -EINVAL: the client id is
 * not an identity. On failure *ret is CLIENT_NULL (every check denies it).
 */
int client_classify(const char *address, const char *broker_socket, const char *username, const char *client_id,
                    Client *ret);

/* client_classify() of a connected broker client. */
struct mosquitto;
int client_classify_broker(const char *broker_socket, const struct mosquitto *client, Client *ret);

/* True if the connection came in on our internal Unix-socket listener. */
bool client_address_is_internal(const char *address, const char *broker_socket);
