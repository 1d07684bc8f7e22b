/* One upstream MQTT connection for one identity: libmosquitto on sd-event */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "hub-store/link.h"
#include "hub-store/upstream-topic.h"
#include "proto/iothub/iot-identity.h"
#include "proto/ipc/frame.h"
#include "proto/runtime/log.h"
#include "proto/runtime/mosq-event.h"
#include "proto/util/backoff.h"
#include "proto/util/cleanup.h"

/* No CONNACK this long after starting to connect: the network is not there. */
#define LINK_CONNECT_TIMEOUT_USEC (10u * 1000000u)
/* A refused CONNECT is not a network blip: start its backoff at ~1.6-3.2 s. */
#define LINK_REFUSED_MIN_ATTEMPT 3u
/* An identity auth-cache does not know may come back with a scope refresh. */
#define LINK_UNKNOWN_IDENTITY_RETRY_USEC (60u * 1000000u)
/* Before the token expires, drain the window and reconnect with a fresh one. */
#define LINK_RENEW_DRAIN_USEC (10u * 1000000u)
#define TIMER_ACCURACY_USEC 1000u

typedef enum LinkTimer {
        LINK_TIMER_NONE,
        LINK_TIMER_CONNECT,     /* connect timeout */
        LINK_TIMER_BACKOFF,     /* retry */
        LINK_TIMER_RENEW,       /* token renewal is due */
        LINK_TIMER_DRAIN,       /* renewal: stop waiting for the window to drain */
} LinkTimer;

struct Link {
        sd_event *event;
        const LinkSettings *settings;
        const LinkOps *ops;
        void *userdata;

        char *identity;
        char *device_id;
        char *module_id;
        char *username;
        /* One per priority of the identity's $upstream queue; filled most urgent first. */
        Sender senders[STORE_PRIORITY_MAX + 1];
        bool has_sender[STORE_PRIORITY_MAX + 1];
        Store *store;

        MosqEvent *conn;        /* libmosquitto on our loop: one per connection */
        sd_event_source *timer_source;
        sd_event_source *fill_source;
        LinkTimer timer;

        LinkState state;
        LinkFailure last_failure;
        unsigned attempts;      /* failures since the last CONNACK */
        int connack;            /* -1 until the CONNACK */
        bool renewing;
        bool renewed;           /* the next CONNACK ends a token renewal */
        bool remove_failing;    /* removing acknowledged records fails (logged once) */
        bool read_failing;      /* reading queued records fails (logged once) */
        char last_error[160];   /* libmosquitto's last error line, for our log */
};

static const char *const link_state_table[_LINK_STATE_MAX] = {
        [LINK_CLOSED] = "closed",
        [LINK_WAITING] = "connecting",
        [LINK_CONNECTING] = "connecting",
        [LINK_UP] = "up",
        [LINK_BACKOFF] = "backoff",
};

const char *link_state_to_string(LinkState s) {
        return s >= 0 && s < _LINK_STATE_MAX ? link_state_table[s] : NULL;
}

static const char *const link_failure_table[_LINK_FAILURE_MAX] = {
        [LINK_FAILURE_NONE] = "none",
        [LINK_FAILURE_NETWORK] = "network",
        [LINK_FAILURE_REFUSED] = "refused",
        [LINK_FAILURE_CREDENTIALS] = "credentials",
        [LINK_FAILURE_UNKNOWN_IDENTITY] = "unknown-identity",
};

const char *link_failure_to_string(LinkFailure f) {
        return f >= 0 && f < _LINK_FAILURE_MAX ? link_failure_table[f] : NULL;
}

LinkState link_state(const Link *l) {
        return l->state;
}

LinkFailure link_last_failure(const Link *l) {
        return l->last_failure;
}

const char *link_identity(const Link *l) {
        return l->identity;
}

const Sender *link_sender(const Link *l, uint8_t priority) {
        return priority <= STORE_PRIORITY_MAX && l->has_sender[priority] ? &l->senders[priority] : NULL;
}

static void link_reset_senders(Link *l) {
        for (size_t p = 0; p <= STORE_PRIORITY_MAX; p++)
                if (l->has_sender[p])
                        sender_reset(&l->senders[p]);
}

static size_t link_in_flight(const Link *l) {
        size_t n = 0;
        for (size_t p = 0; p <= STORE_PRIORITY_MAX; p++)
                if (l->has_sender[p])
                        n += sender_in_flight(&l->senders[p]);
        return n;
}

int link_add_stream(Link *l, StoreStream *st) {
        if (st->priority > STORE_PRIORITY_MAX || strcmp(st->identity, l->identity) != 0)
                return -EINVAL;
        if (!l->has_sender[st->priority]) {
                sender_init(&l->senders[st->priority], l->store, st, l->settings->message_ttl_ms);
                l->has_sender[st->priority] = true;
        }
        return 0;
}

static void link_set_state(Link *l, LinkState state, LinkFailure failure) {
        LinkState old = l->state;

        l->state = state;
        if (state == LINK_BACKOFF)
                l->last_failure = failure;
        else if (state == LINK_UP)
                l->last_failure = LINK_FAILURE_NONE;
        if (l->ops->state_changed)
                l->ops->state_changed(l->userdata, l, old, failure);
}

static void link_arm_timer(Link *l, LinkTimer what, uint64_t usec) {
        l->timer = what;
        (void) sd_event_source_set_time_relative(l->timer_source, usec);
        (void) sd_event_source_set_enabled(l->timer_source, SD_EVENT_ONESHOT);
}

static void link_disarm_timer(Link *l) {
        l->timer = LINK_TIMER_NONE;
        (void) sd_event_source_set_enabled(l->timer_source, SD_EVENT_OFF);
}

/* Drops the libmosquitto client and everything it had in flight. */
static void link_teardown(Link *l, bool say_goodbye) {
        if (l->conn && say_goodbye)
                (void) mosquitto_disconnect(mosq_event_client(l->conn));
        l->conn = mosq_event_free(l->conn);
        l->connack = -1;
        l->renewing = false;
        link_reset_senders(l);
        (void) sd_event_source_set_enabled(l->fill_source, SD_EVENT_OFF);
}

static void link_fail(Link *l, LinkFailure failure, const char *why) {
        uint64_t delay;
        unsigned attempt = l->attempts;

        l->renewed = false;
        link_teardown(l, false);
        link_disarm_timer(l);

        switch (failure) {
        case LINK_FAILURE_UNKNOWN_IDENTITY:
                delay = LINK_UNKNOWN_IDENTITY_RETRY_USEC / 2 + backoff_random() % (LINK_UNKNOWN_IDENTITY_RETRY_USEC / 2);
                break;
        case LINK_FAILURE_REFUSED:
                if (attempt < LINK_REFUSED_MIN_ATTEMPT)
                        attempt = LINK_REFUSED_MIN_ATTEMPT;
                __attribute__((fallthrough));
        default:
                delay = backoff_delay_usec(attempt, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, backoff_random());
        }

        /*
         * The first failure of a streak is logged; network failures only at
         * info, since the manager reports the uplink as a whole (a hundred
         * links dropping with it are one event, not a hundred warnings).
         */
        if (l->attempts == 0 && failure != LINK_FAILURE_UNKNOWN_IDENTITY)
                log_full(failure == LINK_FAILURE_NETWORK ? LOG_INFO : LOG_WARNING,
                         "Upstream link of '%s' failed (%s): %s; retrying in %" PRIu64 " ms",
                         l->identity, link_failure_to_string(failure), why, delay / 1000);
        else
                log_debug("Upstream link of '%s' failed again (%s): %s; retrying in %" PRIu64 " ms",
                          l->identity, link_failure_to_string(failure), why, delay / 1000);
        l->attempts++;

        link_arm_timer(l, LINK_TIMER_BACKOFF, delay);
        link_set_state(l, LINK_BACKOFF, failure);
}

static const char *link_error(Link *l, int mosq_rc) {
        if (l->last_error[0])
                return l->last_error;
        if (mosq_rc == MOSQ_ERR_ERRNO)
                return strerror(errno);
        return mosquitto_strerror(mosq_rc);
}

static void link_schedule_fill(Link *l) {
        if (l->state == LINK_UP && !l->renewing)
                (void) sd_event_source_set_enabled(l->fill_source, SD_EVENT_ONESHOT);
}

/* Turns publish results into sender errors: -EBADMSG means "this record can never go". */
static int link_publish(void *userdata, const StoreRecord *r, int *ret_mid) {
        Link *l = userdata;
        _cleanup_free_ char *topic = NULL;
        int mid = 0, rc;

        if (r->message.payload_len > UPSTREAM_PAYLOAD_MAX)
                return -EBADMSG;
        rc = upstream_topic_format(l->device_id, l->module_id, r->message.properties, r->message.output, &topic);
        if (rc == -ENOMEM)
                return rc;
        if (rc < 0)
                return -EBADMSG;

        rc = mosquitto_publish(mosq_event_client(l->conn), &mid, topic, (int) r->message.payload_len,
                               r->message.payload, 1, false);
        switch (rc) {
        case MOSQ_ERR_SUCCESS:
                *ret_mid = mid;
                return 0;
        case MOSQ_ERR_INVAL:
        case MOSQ_ERR_PAYLOAD_SIZE:
        case MOSQ_ERR_MALFORMED_UTF8:
        case MOSQ_ERR_OVERSIZE_PACKET:
                return -EBADMSG;
        case MOSQ_ERR_NOMEM:
                return -ENOMEM;
        default:
                /* The message may sit in libmosquitto's queue now: only a new client is clean. */
                mosq_event_lost(l->conn);
                return -ECONNRESET;
        }
}

static void link_fill(Link *l) {
        if (l->state != LINK_UP || l->renewing || !l->conn)
                return;
        int r = 0, n;

        /*
         * Most urgent first, and a less urgent queue only once the more urgent
         * ones have nothing left to send: a backlog of old low-priority data
         * then delays fresh urgent data by at most one window in flight.
         */
        for (size_t p = 0; p <= STORE_PRIORITY_MAX && !mosq_event_is_lost(l->conn); p++) {
                Sender *s = &l->senders[p];
                if (!l->has_sender[p])
                        continue;
                /* A route's TTL, else the global one (which the $edgeHub twin may change). */
                s->ttl_ms = s->stream->ttl_ms ? s->stream->ttl_ms : l->settings->message_ttl_ms;
                n = sender_fill(s, realtime_msec(), link_publish, l);
                if (n < 0 && r >= 0)
                        r = n;
                else if (n > 0 && r >= 0)
                        r += n;
                if (sender_has_more(s))
                        break;
        }
        if (mosq_event_is_lost(l->conn)) {
                link_fail(l, LINK_FAILURE_NETWORK, "publish failed");
                return;
        }
        if (r < 0 && r != -ENOMEM && !l->read_failing)
                log_warning_errno(r, "Failed to read queued messages of '%s', retrying with the next: %m",
                                  l->identity);
        l->read_failing = r < 0 && r != -ENOMEM;
        if (r > 0)
                log_debug("Link '%s': published %d, %zu in flight", l->identity, r, link_in_flight(l));
        mosq_event_update(l->conn);
}

/*
 * What the hub sends an identity: cloud-to-device messages (devices only),
 * direct method calls, twin responses and desired-property patches. The
 * SUBSCRIBEs go out before anything we publish, so a twin request sent
 * once the link is up finds its response topic subscribed.
 */
static int link_subscribe(Link *l) {
        _cleanup_free_ char *c2d = NULL;
        const char *filters[] = { "$iothub/methods/POST/#", "$iothub/twin/res/#",
                                  "$iothub/twin/PATCH/properties/desired/#", NULL };
        int rc;

        for (size_t i = 0; filters[i]; i++) {
                rc = mosquitto_subscribe(mosq_event_client(l->conn), NULL, filters[i], 1);
                if (rc != MOSQ_ERR_SUCCESS)
                        return rc;
        }
        if (l->module_id)
                return MOSQ_ERR_SUCCESS;
        if (asprintf(&c2d, "devices/%s/messages/devicebound/#", l->device_id) < 0)
                return MOSQ_ERR_NOMEM;
        return mosquitto_subscribe(mosq_event_client(l->conn), NULL, c2d, 1);
}

static void link_on_up(Link *l) {
        int rc = link_subscribe(l);
        if (rc != MOSQ_ERR_SUCCESS) {
                link_fail(l, LINK_FAILURE_NETWORK, link_error(l, rc));
                return;
        }
        l->attempts = 0;
        link_disarm_timer(l);
        link_reset_senders(l);
        /* Renew at 90% of the token's life (a hub closes links whose token expired). */
        uint64_t renew_usec = l->settings->token_ttl_sec * 900000u;
        if (renew_usec > 0)
                link_arm_timer(l, LINK_TIMER_RENEW, renew_usec);
        /* Token renewals reconnect every token_ttl: not news. */
        log_full(l->renewed ? LOG_DEBUG : LOG_INFO, "Upstream link of '%s' is up", l->identity);
        l->renewed = false;
        link_set_state(l, LINK_UP, LINK_FAILURE_NONE);
        link_fill(l);
}

/* Reconnect with a fresh token; not a failure. */
static void link_renew(Link *l) {
        log_debug("Upstream link of '%s': renewing its token", l->identity);
        link_teardown(l, true);
        l->renewed = true;
        link_disarm_timer(l);
        link_set_state(l, LINK_WAITING, LINK_FAILURE_NONE);
        l->ops->want_connect(l->userdata, l);
}

/* The connection is gone (after libmosquitto returned): a refused CONNACK, or the network. */
static void link_on_lost(void *userdata, int rc, int error) {
        Link *l = userdata;
        const char *why;

        if (l->connack > 0) {
                char refused[64];
                (void) snprintf(refused, sizeof(refused), "CONNACK %d (%s)", l->connack,
                                mosquitto_connack_string(l->connack));
                /* 3 = server unavailable: a hub that cannot serve is as good as unreachable. */
                link_fail(l, l->connack == 3 ? LINK_FAILURE_NETWORK : LINK_FAILURE_REFUSED, refused);
                return;
        }
        if (rc == MOSQ_ERR_SUCCESS)
                why = "connection lost";
        else if (rc == MOSQ_ERR_CONN_LOST && error < 0)
                why = strerror(-error); /* the socket's own error, which libmosquitto's TLS handshake hides */
        else if (rc == MOSQ_ERR_ERRNO && !l->last_error[0])
                why = strerror(-error);
        else
                why = link_error(l, rc);
        link_fail(l, LINK_FAILURE_NETWORK, why);
}

/* Acts on what the callbacks recorded, after libmosquitto has returned with the connection up. */
static void link_on_processed(void *userdata) {
        Link *l = userdata;

        if (l->connack == 0 && l->state == LINK_CONNECTING)
                link_on_up(l);
        if (l->state == LINK_UP && l->renewing && link_in_flight(l) == 0) {
                link_renew(l);
                return;
        }
        mosq_event_update(l->conn);
}

static const MosqEventOps link_mosq_ops = {
        .lost = link_on_lost,
        .processed = link_on_processed,
};

static void on_connect(struct mosquitto *mosq, void *userdata, int rc) {
        Link *l = userdata;
        l->connack = rc;
}

static void on_disconnect(struct mosquitto *mosq, void *userdata, int rc) {
        Link *l = userdata;
        mosq_event_lost(l->conn);
}

static void on_publish(struct mosquitto *mosq, void *userdata, int mid) {
        Link *l = userdata;
        int r = -ENOENT;

        for (size_t p = 0; p <= STORE_PRIORITY_MAX && r == -ENOENT; p++)
                if (l->has_sender[p])
                        r = sender_ack(&l->senders[p], mid);

        /* Once per streak: a failing store (disk full) fails every removal. */
        if (r < 0 && r != -ENOENT && !l->remove_failing)
                log_warning_errno(r, "Failed to remove delivered messages of '%s', they will be sent again: %m",
                                  l->identity);
        if (r != -ENOENT)
                l->remove_failing = r < 0;
        link_schedule_fill(l);
}

static void on_message(struct mosquitto *mosq, void *userdata, const struct mosquitto_message *msg) {
        Link *l = userdata;

        if (l->ops->message)
                l->ops->message(l->userdata, l, msg->topic, msg->payload,
                                msg->payloadlen > 0 ? (size_t) msg->payloadlen : 0);
}

static void on_log(struct mosquitto *mosq, void *userdata, int level, const char *line) {
        Link *l = userdata;

        if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
                (void) snprintf(l->last_error, sizeof(l->last_error), "%s", line);
        log_debug("libmosquitto '%s': %s", l->identity, line);
}

static int link_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Link *l = userdata;
        LinkTimer what = l->timer;

        l->timer = LINK_TIMER_NONE;
        switch (what) {
        case LINK_TIMER_CONNECT:
                if (l->state == LINK_CONNECTING)
                        link_fail(l, LINK_FAILURE_NETWORK, "timed out");
                break;
        case LINK_TIMER_BACKOFF:
                if (l->state == LINK_BACKOFF) {
                        link_set_state(l, LINK_WAITING, LINK_FAILURE_NONE);
                        l->ops->want_connect(l->userdata, l);
                }
                break;
        case LINK_TIMER_RENEW:
                if (l->state != LINK_UP)
                        break;
                l->renewing = true;
                if (link_in_flight(l) == 0)
                        link_renew(l);
                else
                        link_arm_timer(l, LINK_TIMER_DRAIN, LINK_RENEW_DRAIN_USEC);
                break;
        case LINK_TIMER_DRAIN:
                if (l->state == LINK_UP)
                        link_renew(l);
                break;
        default:
                break;
        }
        return 0;
}

static int link_on_fill(sd_event_source *s, void *userdata) {
        link_fill(userdata);
        return 0;
}

int link_new(Link **ret, sd_event *e, const LinkSettings *settings, const LinkOps *ops, void *userdata,
             Store *store, const char *identity) {
        _cleanup_(link_freep) Link *l = calloc(1, sizeof(*l));
        int r;

        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(e);
        l->settings = settings;
        l->ops = ops;
        l->userdata = userdata;
        l->connack = -1;
        l->store = store;
        l->identity = strdup(identity);
        if (!l->identity)
                return -ENOMEM;
        r = iot_identity_split(l->identity, &l->device_id, &l->module_id);
        if (r < 0)
                return r;
        if (asprintf(&l->username, "%s/%s/?api-version=2021-04-12", settings->hub_hostname, l->identity) < 0) {
                l->username = NULL;
                return -ENOMEM;
        }

        /* sd-event's default accuracy is 250 ms: too coarse for a 100 ms first retry. */
        r = sd_event_add_time(e, &l->timer_source, CLOCK_MONOTONIC, 0, TIMER_ACCURACY_USEC, link_on_timer, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(l->timer_source, SD_EVENT_OFF);
        (void) sd_event_source_set_description(l->timer_source, "link-timer");
        r = sd_event_add_defer(e, &l->fill_source, link_on_fill, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(l->fill_source, SD_EVENT_OFF);
        (void) sd_event_source_set_description(l->fill_source, "link-fill");

        *ret = TAKE_PTR(l);
        return 0;
}

Link *link_free(Link *l) {
        if (!l)
                return NULL;
        link_teardown(l, l->state == LINK_UP);
        l->fill_source = sd_event_source_disable_unref(l->fill_source);
        l->timer_source = sd_event_source_disable_unref(l->timer_source);
        free(l->username);
        free(l->module_id);
        free(l->device_id);
        free(l->identity);
        sd_event_unref(l->event);
        free(l);
        return NULL;
}

void link_start(Link *l) {
        if (l->state != LINK_CLOSED)
                return;
        link_set_state(l, LINK_WAITING, LINK_FAILURE_NONE);
        l->ops->want_connect(l->userdata, l);
}

/* Everything libmosquitto needs before connect; the password is wiped after. */
static int link_configure(Link *l, struct mosquitto *mosq) {
        _cleanup_free_ char *password = NULL;
        uint64_t expiry = realtime_msec() / 1000 + l->settings->token_ttl_sec;
        int r, rc;

        r = l->ops->mint_password(l->userdata, l, expiry, &password);
        if (r < 0)
                return r;
        rc = mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
        if (rc == MOSQ_ERR_SUCCESS)
                /* libmosquitto's own in-flight limit (20) would queue part of our window in its memory. */
                rc = mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, SENDER_WINDOW);
        if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
        if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_username_pw_set(mosq, l->username, password);
        explicit_bzero(password, strlen(password));
        /* The shared context as it is: libmosquitto's defaults would load the CA file into it again. */
        if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_int_option(mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);
        if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_void_option(mosq, MOSQ_OPT_SSL_CTX, l->settings->ssl_ctx);
        if (rc != MOSQ_ERR_SUCCESS)
                return rc == MOSQ_ERR_NOMEM ? -ENOMEM : -EINVAL;

        mosquitto_connect_callback_set(mosq, on_connect);
        mosquitto_disconnect_callback_set(mosq, on_disconnect);
        mosquitto_publish_callback_set(mosq, on_publish);
        mosquitto_message_callback_set(mosq, on_message);
        mosquitto_log_callback_set(mosq, on_log);
        return 0;
}

void link_connect(Link *l) {
        int r, rc;

        if (l->state != LINK_WAITING)
                return;
        l->last_error[0] = 0;
        l->connack = -1;

        /* Keepalive: the owner's tick calls link_tick() while the link is up. */
        r = mosq_event_new(&l->conn, l->event, l->identity, 0, &link_mosq_ops, l, "link");
        if (r < 0) {
                link_fail(l, LINK_FAILURE_NETWORK, strerror(-r));
                return;
        }
        struct mosquitto *mosq = mosq_event_client(l->conn);
        r = link_configure(l, mosq);
        if (r == -ENOENT || r == -EACCES) {
                if (l->last_failure != LINK_FAILURE_UNKNOWN_IDENTITY)
                        log_warning("Upstream link of '%s': identity %s in the device scope; "
                                    "its messages stay queued until they expire", l->identity,
                                    r == -ENOENT ? "not found" : "disabled");
                link_fail(l, LINK_FAILURE_UNKNOWN_IDENTITY, "unknown identity");
                return;
        }
        if (r < 0) {
                char why[96];
                (void) snprintf(why, sizeof(why), "no credentials: %s", strerror(-r));
                link_fail(l, LINK_FAILURE_CREDENTIALS, why);
                return;
        }

        /*
         * libmosquitto resolves the host synchronously (getaddrinfo): instant for
         * an address or a hosts-file name, but a slow DNS server would stall the
         * loop for its timeout. Connects are rate-limited, which bounds it.
         */
        rc = mosquitto_connect_async(mosq, l->settings->host, l->settings->port, (int) l->settings->keepalive_sec);
        if (rc != MOSQ_ERR_SUCCESS) {
                link_fail(l, LINK_FAILURE_NETWORK, link_error(l, rc));
                return;
        }
        r = mosq_event_attach(l->conn, true);
        if (r < 0) {
                link_fail(l, LINK_FAILURE_NETWORK, r == -ENOTCONN ? "no socket" : strerror(-r));
                return;
        }
        link_arm_timer(l, LINK_TIMER_CONNECT, LINK_CONNECT_TIMEOUT_USEC);
        link_set_state(l, LINK_CONNECTING, LINK_FAILURE_NONE);
}

void link_retry_now(Link *l) {
        if (l->state != LINK_BACKOFF)
                return;
        link_disarm_timer(l);
        link_set_state(l, LINK_WAITING, LINK_FAILURE_NONE);
        l->ops->want_connect(l->userdata, l);
}

void link_close(Link *l) {
        if (l->state == LINK_CLOSED)
                return;
        link_teardown(l, l->state == LINK_UP);
        link_disarm_timer(l);
        l->attempts = 0;
        link_set_state(l, LINK_CLOSED, LINK_FAILURE_NONE);
}

void link_kick(Link *l) {
        link_schedule_fill(l);
}

int link_send(Link *l, const char *topic, const void *payload, size_t len) {
        int rc;

        if (l->state != LINK_UP || !l->conn || mosq_event_is_lost(l->conn))
                return -ENOTCONN;
        if (len > UPSTREAM_PAYLOAD_MAX)
                return -EMSGSIZE;
        /* Its PUBACK's mid is unknown to the sender, which ignores it. */
        rc = mosquitto_publish(mosq_event_client(l->conn), NULL, topic, (int) len, payload, 1, false);
        if (rc == MOSQ_ERR_INVAL || rc == MOSQ_ERR_MALFORMED_UTF8 || rc == MOSQ_ERR_PAYLOAD_SIZE)
                return -EINVAL;
        if (rc != MOSQ_ERR_SUCCESS) {
                mosq_event_lost(l->conn); /* torn down from the loop */
                return -ECONNRESET;
        }
        mosq_event_update(l->conn);
        return 0;
}

void link_tick(Link *l) {
        if (l->state != LINK_UP || !l->conn)
                return;
        mosq_event_misc(l->conn);
}
