/* CONNECT credentials: our daemons by socket, everyone else through auth-cache */
#include <string.h>

#include "broker-plugin/auth-verdict.h"
#include "broker-plugin/auth.h"
#include "broker-plugin/broker-api.h"
#include "broker-plugin/bus-relay.h"
#include "broker-plugin/plugin.h"
#include "broker-plugin/x509-client.h"
#include "proto/ipc/bus.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

/*
 * MOSQ_ERR_SUCCESS admits the client; MOSQ_ERR_AUTH makes mosquitto answer
 * CONNACK "not authorised". When auth-cache cannot answer in time the client
 * is not admitted either (unchecked clients would break isolation), but gets
 * a close without a CONNACK, which the SDKs retry (auth-verdict.h).
 *
 * Client ids and usernames are safe to log: mosquitto rejects control
 * characters in them before we see them (lib/utf8_mosq.c
 * mosquitto_validate_utf8(), via packet__read_string()). Passwords never are.
 */

static bool username_names_client(const char *username, const Client *c) {
        _cleanup_(iot_username_deinit) IotUsername u = IOT_USERNAME_NULL;

        if (iot_username_parse(username, strlen(username), &u) < 0)
                return false;
        if (strcmp(u.device_id, c->device) != 0)
                return false;
        if (c->kind == CLIENT_MODULE)
                return u.module_id && strcmp(u.module_id, c->module) == 0;
        return !u.module_id;
}

AuthPlan auth_plan(const char *address, const char *broker_socket, const char *client_id, const char *username,
                   const char *password, bool has_certificate, Client *ret_client, const char **ret_why) {
        int r;

        *ret_why = NULL;
        r = client_classify(address, broker_socket, username, client_id, ret_client);
        if (r == -EPERM) {
                *ret_why = "an $edgehub name is reserved for the internal socket";
                return AUTH_REFUSE;
        }
        if (r >= 0 && ret_client->kind == CLIENT_INTERNAL)
                return AUTH_ACCEPT_INTERNAL;
        if (!username || ((!password || !*password) && !has_certificate)) {
                *ret_why = "no username or password";
                return AUTH_REFUSE;
        }
        if (r < 0) {
                *ret_why = "client id is not a device or module id";
                return AUTH_REFUSE;
        }
        /* IoT Hub requires the client id to be the identity; the ACLs rely on it. */
        if (!username_names_client(username, ret_client)) {
                *ret_why = "username names another identity than the client id";
                return AUTH_REFUSE;
        }
        return AUTH_ASK_AUTH_CACHE;
}

/*
 * Presence goes out on the bus only, never as a call: the broker's thread
 * waits for no daemon per CONNECT (a reconnect storm of a thousand devices),
 * and a daemon that joins the bus later asks for the connected set
 * (BUS_TOPIC_PRESENCE_QUERY, bus-relay.h).
 */
static void auth_report_connected(Plugin *p, const struct mosquitto *client, const char *identity) {
        int r;

        r = presence_add(&p->presence, client, identity);
        if (r < 0) {
                log_warning_errno(r, "Failed to record connection of '%s', ignoring: %m", identity);
                return;
        }
        if (r == 0)
                return; /* a second connection taking over: the daemons already know */

        bus_relay_announce(p, BUS_TOPIC_PRESENCE, identity, "connected");
}

int auth_basic_callback(int event, void *event_data, void *userdata) {
        struct mosquitto_evt_basic_auth *ed = event_data;
        _cleanup_free_ char *confirmed = NULL;
        _cleanup_free_ uint8_t *cert = NULL;
        size_t cert_len = 0;
        uint64_t cert_not_after = 0;
        Plugin *p = userdata;
        const char *client_id = mosquitto_client_id(ed->client);
        const char *address = mosquitto_client_address(ed->client);
        const char *why;
        int status = 0;
        Client c;
        int r;

        r = x509_client_der(ed->client, &cert, &cert_len, &cert_not_after);
        if (r < 0)
                log_ratelimit(&p->auth_ratelimit, LOG_INFO, "Client '%s' from %s: unusable TLS client certificate "
                              "(%s), ignoring it", strna(client_id), strna(address), strerror(-r));

        switch (auth_plan(address, p->broker_socket, client_id, ed->username, ed->password, cert != NULL, &c, &why)) {
        case AUTH_ACCEPT_INTERNAL:
                log_debug("Internal client '%s' connected as '%s'", strna(client_id), ed->username);
                return MOSQ_ERR_SUCCESS;
        case AUTH_ASK_AUTH_CACHE:
                break;
        case AUTH_REFUSE:
        default:
                log_ratelimit(&p->auth_ratelimit, LOG_INFO, "Client '%s' from %s refused: %s", strna(client_id),
                              strna(address), why ? why : "unexpected");
                return MOSQ_ERR_AUTH;
        }

        r = backend_auth_with_certificate(&p->backend, client_id, ed->username, ed->password, cert, cert_len, &status,
                                          &confirmed);
        if (r < 0) {
                log_ratelimit_warning(&p->auth_ratelimit, "Client '%s' not admitted: auth-cache unavailable (%s)",
                                      client_id, strerror(-r));
                return auth_verdict(r, status);
        }
        if (status < 0) {
                log_ratelimit(&p->auth_ratelimit, LOG_INFO, "Client '%s' refused by auth-cache: %s", client_id,
                              strerror(-status));
                return auth_verdict(r, status);
        }
        if (confirmed && strcmp(confirmed, client_id) != 0) {
                log_ratelimit_warning(&p->auth_ratelimit, "Client '%s' refused: auth-cache admitted it as '%s'",
                                      client_id, confirmed);
                return MOSQ_ERR_AUTH;
        }

        log_debug("Client '%s' authenticated", client_id);
        /* A token's se ends a SAS connection; an X.509 device's ends with its certificate. */
        uint64_t expiry = token_expiry_of_password(ed->password);
        if (expiry == 0 && cert)
                expiry = cert_not_after;
        r = token_expiry_add(&p->expiry, ed->client, client_id, expiry);
        if (r < 0) /* Unbounded and unmarked it would be a hole: refuse, the SDK retries. */
                return MOSQ_ERR_NOMEM;
        auth_report_connected(p, ed->client, client_id);
        return MOSQ_ERR_SUCCESS;
}
