/* CONNECT credentials: our daemons by socket, everyone else through auth-cache */
#pragma once

#include "broker-plugin/identity.h"

typedef enum AuthPlan {
        AUTH_ACCEPT_INTERNAL,  /* our daemon on the internal socket: no password */
        AUTH_ASK_AUTH_CACHE,   /* a device or module: auth-cache checks the SAS token or certificate */
        AUTH_REFUSE,
        _AUTH_PLAN_MAX,
        _AUTH_PLAN_INVALID = -EINVAL,
} AuthPlan;

/*
 * Decides how to check a CONNECT before anything is sent anywhere: an
 * internal username from outside the internal socket, a missing username, a
 * missing password without a TLS client certificate (X.509 devices send
 * none: has_certificate), a client id that is not an identity, or a username naming
 * another identity than the client id is refused here. *ret_why says why
 * (for the log) when refused. *ret_client is the classified client.
 */
AuthPlan auth_plan(const char *address, const char *broker_socket, const char *client_id, const char *username,
                   const char *password, bool has_certificate, Client *ret_client, const char **ret_why);

/* MOSQ_EVT_BASIC_AUTH; userdata is the Plugin. */
int auth_basic_callback(int event, void *event_data, void *userdata);
