/* One upstream MQTT connection for one identity: libmosquitto on sd-event */
#pragma once

#include <errno.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "hub-store/sender.h"
#include "hub-store/store.h"
#include "proto/util/cleanup.h"

/*
 * IoT Hub wants one MQTT 3.1.1 connection per identity, over TLS, with a SAS
 * token as password (DESIGN.md "Upstream"). A Link owns one libmosquitto
 * client on our sd-event loop (proto/runtime/mosq-event.h) per connection
 * and keeps here what is IoT Hub's: the CONNACK, the send window, token
 * renewal, the reasons for the log. A lost connection destroys the client
 * outright: libmosquitto's own queue would resend from memory (duplicates,
 * possibly out of order); we resend from the store instead (invariant 2).
 *
 *   CLOSED -start-> WAITING -(rate limit)-> CONNECTING -CONNACK 0-> UP
 *   CONNECTING/UP -failure-> BACKOFF -timer or retry_now-> WAITING
 *   any -close-> CLOSED
 */
typedef struct Link Link;

typedef enum LinkState {
        LINK_CLOSED,
        LINK_WAITING,       /* wants to connect; the owner's rate limit decides when */
        LINK_CONNECTING,    /* TCP, TLS, CONNECT under way */
        LINK_UP,            /* CONNACK accepted: publishing */
        LINK_BACKOFF,       /* failed; retries after a delay */
        _LINK_STATE_MAX,
        _LINK_STATE_INVALID = -EINVAL,
} LinkState;

typedef enum LinkFailure {
        LINK_FAILURE_NONE,
        LINK_FAILURE_NETWORK,      /* connect, TLS, keepalive or lost: the uplink may be down */
        LINK_FAILURE_REFUSED,      /* the hub answered and refused the CONNECT */
        LINK_FAILURE_CREDENTIALS,  /* no key to sign with (unknown identity, auth-cache away) */
        LINK_FAILURE_UNKNOWN_IDENTITY, /* not in the device scope, or disabled there */
        _LINK_FAILURE_MAX,
        _LINK_FAILURE_INVALID = -EINVAL,
} LinkFailure;

typedef struct LinkSettings {
        const char *host;
        uint16_t port;
        const char *ca_file;         /* NULL: the system's CA store */
        SSL_CTX *ssl_ctx;            /* shared by every link (link-tls.h); ca_file and host are in it */
        const char *hub_hostname;
        uint64_t token_ttl_sec;
        uint64_t message_ttl_ms;     /* 0: no TTL */
        unsigned keepalive_sec;
} LinkSettings;

/* Callbacks to the owner. None of them may free the link. */
typedef struct LinkOps {
        /* The SAS token for the link's identity valid until expiry; -ENOENT unknown, -EACCES disabled. */
        int (*mint_password)(void *userdata, Link *l, uint64_t expiry, char **ret);
        /* The link is WAITING: call link_connect() when the connect-rate limit allows. */
        void (*want_connect)(void *userdata, Link *l);
        /* After every state change; failure says why when the new state is BACKOFF. */
        void (*state_changed)(void *userdata, Link *l, LinkState old, LinkFailure failure);
        /* A message from the hub on one of the link's subscriptions (C2D, methods, twins). */
        void (*message)(void *userdata, Link *l, const char *topic, const void *payload, size_t len);
} LinkOps;

int link_new(Link **ret, sd_event *e, const LinkSettings *settings, const LinkOps *ops, void *userdata,
             Store *store, const char *identity);
/* The identity's $upstream queue at the stream's priority is sent on this link (idempotent). */
int link_add_stream(Link *l, StoreStream *st);
/* Closes the connection (no callback) and frees. */
Link *link_free(Link *l);

/* CLOSED -> WAITING. */
void link_start(Link *l);
/* WAITING -> CONNECTING, or BACKOFF if that fails at once. */
void link_connect(Link *l);
/* BACKOFF -> WAITING now, forgetting the backoff (the uplink is back). */
void link_retry_now(Link *l);
/* Any -> CLOSED; a connected link says DISCONNECT first. */
void link_close(Link *l);
/* New messages were stored for this identity. */
void link_kick(Link *l);
/* About once a second: keepalive. */
void link_tick(Link *l);
/*
 * Publishes a request of the identity (a twin request, a method response)
 * at QoS 1, outside the stored queue. -ENOTCONN unless the link is UP.
 */
int link_send(Link *l, const char *topic, const void *payload, size_t len);

LinkState link_state(const Link *l);
LinkFailure link_last_failure(const Link *l);
const char *link_identity(const Link *l);
/* The sender of a priority, or NULL. */
const Sender *link_sender(const Link *l, uint8_t priority);

const char *link_state_to_string(LinkState s);
const char *link_failure_to_string(LinkFailure f);

DEFINE_CLEANUP_FUNC(Link, link_free);
