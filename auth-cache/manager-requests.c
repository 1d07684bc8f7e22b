/* Requests on auth-cache.sock: credential checks, key lookups, control */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth-cache/auth-check.h"
#include "auth-cache/manager.h"
#include "proto/iothub/iot-identity.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

/* Client ids come from devices: keep log lines one line of printable text. */
static void sanitize(const char *s, char *buf, size_t size) {
        size_t n = 0;

        for (; s && *s && n + 1 < size; s++)
                buf[n++] = (*s >= 0x20 && *s < 0x7f && *s != '\'') ? *s : '?';
        buf[n] = '\0';
}

static void log_refusal(Manager *m, const char *client_id, const char *reason) {
        char id[IOT_ID_MAX * 2 + 2];
        unsigned dropped;

        if (!ratelimit_below(&m->refusal_log, now_usec(), &dropped))
                return;
        if (dropped > 0)
                log_info("Dropped %u similar message(s)", dropped);
        sanitize(client_id, id, sizeof(id));
        log_info("Refused '%s': %s", id, reason);
}

static int handle_auth(Manager *m, const Frame *req, FrameBuilder *reply) {
        _cleanup_free_ char *client_id = NULL, *username = NULL;
        const FrameField *password, *cert;
        const Identity *id = NULL;
        const char *reason = NULL;
        int r;

        if (frame_get_string(req, WIRE_CLIENT_ID, &client_id) < 0 ||
            frame_get_string(req, WIRE_USERNAME, &username) < 0) {
                wire_reply_init(reply, WIRE_AUTH_REPLY, EINVAL, "client id and username are required");
                return 0;
        }
        password = frame_get(req, WIRE_PASSWORD);
        cert = frame_get(req, WIRE_CERTIFICATE);

        const char *const hosts[2] = { m->config->hub_hostname, m->config->gateway_hostname };
        size_t n_hosts = hosts[1] ? 2 : 1;
        AuthRequest ar = {
                .client_id = client_id,
                .username = username,
                .password = password ? password->data : NULL,
                .password_len = password ? password->len : 0,
                .max_lifetime_sec = m->config->max_token_lifetime_sec,
                .cert = cert ? cert->data : NULL,
                .cert_len = cert ? cert->len : 0,
                .trust = m->trust,
        };
        r = auth_check(m->scope, hosts, n_hosts, &ar, realtime_msec() / 1000u, &id, &reason);
        if (r < 0) {
                log_refusal(m, client_id, reason);
                wire_reply_init(reply, WIRE_AUTH_REPLY, -r, reason);
                return 0;
        }

        log_debug("Accepted '%s'", id->name);
        wire_reply_init(reply, WIRE_AUTH_REPLY, 0, NULL);
        frame_builder_add_string(reply, WIRE_IDENTITY, id->name);
        return 0;
}

static bool is_own_edgehub(const Manager *m, const char *identity) {
        size_t n = strlen(m->config->edge_device_id);

        return strncmp(identity, m->config->edge_device_id, n) == 0 && strcmp(identity + n, "/$edgeHub") == 0;
}

/*
 * What auth-cache knows of identity's key: 0 with *ret_key (borrowed) or,
 * for an X.509 child, *ret_signer; else a positive errno and *ret_error.
 */
static int key_lookup(Manager *m, const char *identity, const char **ret_key, char **ret_signer,
                      const char **ret_error) {
        const Identity *id;
        const char *key;

        *ret_key = NULL;
        *ret_signer = NULL;
        /* Our own key is configured, not synced: hub-store needs it to reach the cloud before any sync. */
        if (is_own_edgehub(m, identity))
                key = m->config->edgehub_key;
        else {
                id = scope_find(m->scope, identity);
                if (!id) {
                        *ret_error = "not in the device scope";
                        return ENOENT;
                }
                if (!id->enabled) {
                        *ret_error = "disabled";
                        return EACCES;
                }
                key = identity_key(id);
                /* An X.509 child: we hold no key of it, so its link signs as our $edgeHub (on behalf of it). */
                if (id->auth != IDENTITY_AUTH_SAS && !id->module_id)
                        return config_edge_identity(m->config, "$edgeHub", ret_signer);
        }
        if (!key) {
                *ret_error = "no key";
                return ENOENT;
        }
        *ret_key = key;
        return 0;
}

static int handle_key(Manager *m, const Frame *req, FrameBuilder *reply) {
        _cleanup_free_ char *identity = NULL, *signer = NULL;
        const char *key, *error = NULL;
        int r;

        if (frame_get_string(req, WIRE_IDENTITY, &identity) < 0) {
                wire_reply_init(reply, WIRE_KEY_REPLY, EINVAL, "identity is required");
                return 0;
        }
        r = key_lookup(m, identity, &key, &signer, &error);
        if (r < 0)
                return r;
        wire_reply_init(reply, WIRE_KEY_REPLY, r, error);
        if (signer)
                frame_builder_add_string(reply, WIRE_IDENTITY, signer);
        else if (key)
                frame_builder_add_string(reply, WIRE_KEY, key);
        return 0;
}

/* The key request's verdict without the key: for callers that only ask whether the identity exists. */
static int handle_identity(Manager *m, const Frame *req, FrameBuilder *reply) {
        _cleanup_free_ char *identity = NULL, *signer = NULL;
        const char *key, *error = NULL;
        int r;

        if (frame_get_string(req, WIRE_IDENTITY, &identity) < 0) {
                wire_reply_init(reply, WIRE_IDENTITY_REPLY, EINVAL, "identity is required");
                return 0;
        }
        r = key_lookup(m, identity, &key, &signer, &error);
        if (r < 0)
                return r;
        wire_reply_init(reply, WIRE_IDENTITY_REPLY, r, error);
        return 0;
}

/*
 * Keys and identity queries only for the hub's own daemons (the agent, hub-store, method-router);
 * credential checks also for the broker (the plugin); "sync" is an
 * administrator's, "status" and "devices" anyone's in the read group.
 */
unsigned manager_request_access(void *userdata, const Frame *request) {
        static const char *const admin[] = { "sync", NULL };

        switch (request->type) {
        case WIRE_AUTH_REQUEST:
                return PEER_HUB | PEER_BROKER;
        case WIRE_CONTROL_REQUEST:
                return wire_control_access(request, admin);
        default:
                return PEER_HUB;
        }
}

int manager_handle_request(void *userdata, const Frame *request, FrameBuilder *reply) {
        Manager *m = userdata;

        switch (request->type) {
        case WIRE_AUTH_REQUEST:
                return handle_auth(m, request, reply);
        case WIRE_KEY_REQUEST:
                return handle_key(m, request, reply);
        case WIRE_IDENTITY_REQUEST:
                return handle_identity(m, request, reply);
        case WIRE_CONTROL_REQUEST:
                return manager_control(m, request, reply);
        default:
                /* Not ours: a confused or hostile peer. Closing it is the answer. */
                log_debug("Unexpected request type %u, closing the connection", (unsigned) request->type);
                return -EBADMSG;
        }
}
