/* The internal bus: our daemons as MQTT v5 clients of the local broker */
#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "proto/ipc/bus.h"
#include "proto/runtime/log.h"
#include "proto/runtime/mosq-event.h"
#include "proto/util/array.h"
#include "proto/util/backoff.h"
#include "proto/util/cleanup.h"

#define KEEPALIVE_SEC 60
#define MISC_INTERVAL_USEC (1000u * 1000u)
#define BACKOFF_MIN_USEC (100u * 1000u)
#define BACKOFF_MAX_USEC (5u * 1000u * 1000u)

typedef struct Pending {
        int mid;
        BusPublishDone done;
        void *userdata;
} Pending;

struct Bus {
        sd_event *event;
        char *socket_path;
        char *client_id;
        char *username;
        BusHandlers handlers;
        void *userdata;

        char **filters;
        size_t n_filters;

        MosqEvent *conn; /* one per connection: a fresh client each time */
        sd_event_source *reconnect_timer;
        bool connected; /* CONNACK seen and subscriptions sent */
        uint64_t backoff_usec;
        unsigned failures;

        Pending *pending;
        size_t n_pending;
        size_t n_allocated;
        bool lib_initialized;
};

static void bus_disconnect(Bus *b);
const char *bus_link_state_to_string(BusLinkState s) {
        switch (s) {
        case BUS_LINK_UP:
                return "up";
        case BUS_LINK_DOWN:
                return "down";
        default:
                return "unknown";
        }
}

BusLinkState bus_link_state_from_payload(const void *payload, size_t len) {
        if (len == 2 && memcmp(payload, "up", 2) == 0)
                return BUS_LINK_UP;
        if (len == 4 && memcmp(payload, "down", 4) == 0)
                return BUS_LINK_DOWN;
        return BUS_LINK_UNKNOWN;
}

void bus_request_ids_init(BusRequestIds *ids, const char *tag) {
        uint32_t seed = 0;

        /* Only for telling runs apart; a weak value costs nothing but a rare stale match. */
        (void) getrandom(&seed, sizeof(seed), GRND_NONBLOCK);
        *ids = (BusRequestIds){};
        snprintf(ids->prefix, sizeof(ids->prefix), "%.8s%08" PRIx32 "-", tag, seed);
}

char *bus_request_id_next(BusRequestIds *ids) {
        char *s;

        if (asprintf(&s, "%s%" PRIu64, ids->prefix, ++ids->counter) < 0)
                return NULL;
        return s;
}

static void bus_schedule_reconnect(Bus *b);

/* After libmosquitto returned: drop the client and start over. */
static void bus_on_lost(void *userdata, int rc, int error) {
        Bus *b = userdata;

        if (b->connected)
                log_notice("Lost the bus connection: %s", rc != MOSQ_ERR_SUCCESS ? mosquitto_strerror(rc) : "disconnected");
        bus_disconnect(b);
        bus_schedule_reconnect(b);
}

static const MosqEventOps bus_mosq_ops = {
        .lost = bus_on_lost,
};

static void on_connect(struct mosquitto *mosq, void *userdata, int rc, int flags, const mosquitto_property *props) {
        Bus *b = userdata;

        if (rc != 0) {
                b->failures++;
                log_full(b->failures == 1 ? LOG_WARNING : LOG_DEBUG, "The broker refused the bus connection, will retry: %s",
                         mosquitto_reason_string(rc));
                mosq_event_lost(b->conn);
                return;
        }
        for (size_t i = 0; i < b->n_filters; i++) {
                rc = mosquitto_subscribe_v5(mosq, NULL, b->filters[i], 1, 0, NULL);
                if (rc != MOSQ_ERR_SUCCESS) {
                        log_warning("Failed to subscribe to '%s' on the bus: %s", b->filters[i], mosquitto_strerror(rc));
                        mosq_event_lost(b->conn);
                        return;
                }
        }
        log_debug("Connected to the bus as '%s'", b->client_id);
        b->connected = true;
        b->failures = 0;
        b->backoff_usec = 0;
        /* The broker handles our SUBSCRIBE before anything we publish after it, in order. */
        if (b->handlers.connected)
                b->handlers.connected(b, b->userdata);
}

static void on_disconnect(struct mosquitto *mosq, void *userdata, int rc, const mosquitto_property *props) {
        Bus *b = userdata;
        mosq_event_lost(b->conn);
}

static void on_publish(struct mosquitto *mosq, void *userdata, int mid, int reason, const mosquitto_property *props) {
        Bus *b = userdata;

        for (size_t i = 0; i < b->n_pending; i++) {
                Pending p = b->pending[i];
                if (p.mid != mid)
                        continue;
                memmove(b->pending + i, b->pending + i + 1, (b->n_pending - i - 1) * sizeof(*b->pending));
                b->n_pending--;
                if (p.done)
                        p.done(b, reason, p.userdata);
                return;
        }
}

static int user_property_copy(const mosquitto_property *props, const char *key, char **ret) {
        *ret = NULL;
        for (const mosquitto_property *p = props; p; p = mosquitto_property_next(p)) {
                char *name = NULL, *value = NULL;

                if (mosquitto_property_identifier(p) != MQTT_PROP_USER_PROPERTY)
                        continue;
                if (!mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value, false))
                        return -ENOMEM;
                bool match = strcmp(name, key) == 0;
                free(name);
                if (match) {
                        *ret = value;
                        return 0;
                }
                free(value);
        }
        return 0;
}

static void on_message(struct mosquitto *mosq, void *userdata, const struct mosquitto_message *msg,
                       const mosquitto_property *props) {
        _cleanup_free_ char *client = NULL, *target = NULL;
        Bus *b = userdata;

        if (user_property_copy(props, BUS_PROPERTY_CLIENT, &client) < 0 ||
            user_property_copy(props, BUS_PROPERTY_TOPIC, &target) < 0) {
                log_warning("Out of memory reading a bus message on '%s', dropped", msg->topic);
                return;
        }
        if (!b->handlers.message)
                return;
        b->handlers.message(b, &(BusMessage){
                .topic = msg->topic,
                .payload = msg->payload,
                .len = msg->payloadlen > 0 ? (size_t) msg->payloadlen : 0,
                .client = client,
                .target = target,
        }, b->userdata);
}

static void bus_fail_pending(Bus *b) {
        /* Callbacks may publish again (and fail with -ENOTCONN): detach the list first. */
        Pending *pending = TAKE_PTR(b->pending);
        size_t n = b->n_pending;

        b->n_pending = b->n_allocated = 0;
        for (size_t i = 0; i < n; i++)
                if (pending[i].done)
                        pending[i].done(b, -ECONNRESET, pending[i].userdata);
        free(pending);
}

static void bus_disconnect(Bus *b) {
        bool was_connected = b->connected;

        b->conn = mosq_event_free(b->conn);
        b->connected = false;
        bus_fail_pending(b);
        if (was_connected && b->handlers.disconnected)
                b->handlers.disconnected(b, b->userdata);
}

static int bus_connect(Bus *b) {
        struct mosquitto *mosq;
        int rc, r;

        r = mosq_event_new(&b->conn, b->event, b->client_id, MISC_INTERVAL_USEC, &bus_mosq_ops, b, "bus");
        if (r < 0)
                return r;
        mosq = mosq_event_client(b->conn);
        rc = mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
        if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_username_pw_set(mosq, b->username, NULL);
        if (rc != MOSQ_ERR_SUCCESS)
                return -EINVAL;
        mosquitto_connect_v5_callback_set(mosq, on_connect);
        mosquitto_disconnect_v5_callback_set(mosq, on_disconnect);
        mosquitto_publish_v5_callback_set(mosq, on_publish);
        mosquitto_message_v5_callback_set(mosq, on_message);

        /* Port 0: host is a Unix socket path (libmosquitto 2.0 net__try_connect_unix). */
        rc = mosquitto_connect(mosq, b->socket_path, 0, KEEPALIVE_SEC);
        if (rc == MOSQ_ERR_ERRNO)
                return -errno;
        if (rc != MOSQ_ERR_SUCCESS)
                return -ECONNREFUSED;
        return mosq_event_attach(b->conn, false);
}

static int on_reconnect(sd_event_source *s, uint64_t usec, void *userdata) {
        Bus *b = userdata;
        int r;

        if (b->conn)
                return 0;
        r = bus_connect(b);
        if (r >= 0)
                return 0;
        b->failures++;
        /* The broker starts after us: the first failures are expected. */
        log_full_errno(b->failures == 20 ? LOG_WARNING : LOG_DEBUG, r, "Cannot reach the bus at '%s', will retry: %m",
                       b->socket_path);
        bus_disconnect(b);
        bus_schedule_reconnect(b);
        return 0;
}

static void bus_arm_reconnect(Bus *b, uint64_t delay) {
        int r;

        if (b->reconnect_timer) {
                r = sd_event_source_set_time_relative(b->reconnect_timer, delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(b->reconnect_timer, SD_EVENT_ONESHOT);
        } else {
                r = sd_event_add_time_relative(b->event, &b->reconnect_timer, CLOCK_MONOTONIC, delay, 0, on_reconnect,
                                               b);
                if (r >= 0)
                        (void) sd_event_source_set_description(b->reconnect_timer, "bus-reconnect");
        }
        if (r < 0)
                log_warning_errno(r, "Failed to schedule a bus connection: %m");
}

static void bus_schedule_reconnect(Bus *b) {
        bus_arm_reconnect(b, backoff_next(&b->backoff_usec, BACKOFF_MIN_USEC, BACKOFF_MAX_USEC));
}

int bus_start(Bus *b) {
        bus_arm_reconnect(b, 0);
        return 0;
}

static bool bus_payload_is(const BusMessage *m, const char *word) {
        return m->len == strlen(word) && memcmp(m->payload, word, m->len) == 0;
}

int bus_presence_parse(const BusMessage *m, bool *ret_connected) {
        if (!m->client)
                return -EBADMSG;
        if (bus_payload_is(m, "connected"))
                *ret_connected = true;
        else if (bus_payload_is(m, "disconnected"))
                *ret_connected = false;
        else
                return -EBADMSG;
        return 0;
}

bool bus_connected(const Bus *b) {
        return b->connected;
}

int bus_add_subscription(Bus *b, const char *filter) {
        char **f = reallocarray(b->filters, b->n_filters + 1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        b->filters = f;
        f[b->n_filters] = strdup(filter);
        if (!f[b->n_filters])
                return -ENOMEM;
        b->n_filters++;
        return 0;
}

static int add_user_property(mosquitto_property **props, const char *key, const char *value) {
        if (!value)
                return 0;
        return mosquitto_property_add_string_pair(props, MQTT_PROP_USER_PROPERTY, key, value) == MOSQ_ERR_SUCCESS
                       ? 0
                       : -ENOMEM;
}

int bus_publish(Bus *b, const char *topic, const void *payload, size_t len, const char *client, const char *target,
                BusPublishDone done, void *userdata) {
        mosquitto_property *props = NULL;
        int mid = 0, rc, r;

        if (!b->connected || mosq_event_is_lost(b->conn))
                return -ENOTCONN;
        if (len > INT32_MAX)
                return -EMSGSIZE;
        if (ARRAY_RESERVE_ONE(b->pending, b->n_allocated, b->n_pending) < 0)
                return -ENOMEM;
        r = add_user_property(&props, BUS_PROPERTY_CLIENT, client);
        if (r >= 0)
                r = add_user_property(&props, BUS_PROPERTY_TOPIC, target);
        if (r < 0) {
                mosquitto_property_free_all(&props);
                return r;
        }
        rc = mosquitto_publish_v5(mosq_event_client(b->conn), &mid, topic, (int) len, payload, 1, false, props);
        mosquitto_property_free_all(&props);
        if (rc != MOSQ_ERR_SUCCESS) {
                /* Torn down from the loop; the caller keeps what it wanted to send. */
                mosq_event_lost(b->conn);
                return rc == MOSQ_ERR_NOMEM ? -ENOMEM : -ENOTCONN;
        }
        b->pending[b->n_pending++] = (Pending){ .mid = mid, .done = done, .userdata = userdata };
        mosq_event_update(b->conn);
        return 0;
}

void bus_forget(Bus *b, void *userdata) {
        for (size_t i = 0; i < b->n_pending; i++)
                if (b->pending[i].userdata == userdata)
                        b->pending[i].done = NULL;
}

int bus_new(Bus **ret, sd_event *e, const char *socket_path, const char *name, const BusHandlers *h, void *userdata) {
        _cleanup_(bus_freep) Bus *b = NULL;

        b = calloc(1, sizeof(*b));
        if (!b)
                return -ENOMEM;
        b->event = sd_event_ref(e);
        b->handlers = *h;
        b->userdata = userdata;
        b->socket_path = strdup(socket_path);
        if (!b->socket_path || asprintf(&b->client_id, "$edgehub-%s", name) < 0 ||
            asprintf(&b->username, "$edgehub/%s", name) < 0)
                return -ENOMEM;
        if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS)
                return -EIO;
        b->lib_initialized = true;
        *ret = TAKE_PTR(b);
        return 0;
}

Bus *bus_free(Bus *b) {
        if (!b)
                return NULL;
        /* Nobody may be called back while going away. */
        for (size_t i = 0; i < b->n_pending; i++)
                b->pending[i].done = NULL;
        b->handlers = (BusHandlers){};
        bus_disconnect(b);
        b->reconnect_timer = sd_event_source_disable_unref(b->reconnect_timer);
        for (size_t i = 0; i < b->n_filters; i++)
                free(b->filters[i]);
        free(b->filters);
        free(b->pending);
        if (b->lib_initialized)
                mosquitto_lib_cleanup();
        free(b->client_id);
        free(b->username);
        free(b->socket_path);
        sd_event_unref(b->event);
        free(b);
        return NULL;
}
