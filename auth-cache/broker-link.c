/* Telling the local broker to disconnect identities that lost their access */
#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>

#include "auth-cache/broker-link.h"
#include "proto/cleanup.h"
#include "proto/log.h"

#define KEEPALIVE_SEC 60
#define MISC_INTERVAL_USEC (1000u * 1000u)
#define BACKOFF_MIN_USEC (500u * 1000u)
#define BACKOFF_MAX_USEC (30u * 1000u * 1000u)

typedef struct Kick {
        char *client_id;
        int mid; /* of the publish in flight on this connection; 0 = not sent */
} Kick;

struct BrokerLink {
        sd_event *event;
        char *socket_path;

        /* A fresh client per connection: libmosquitto's own resend queue would duplicate ours. */
        struct mosquitto *mosq;
        sd_event_source *io;
        sd_event_source *misc_timer;
        sd_event_source *reconnect_timer;
        bool connected; /* CONNACK success seen */
        bool lost;      /* set by a libmosquitto callback; torn down after it returns */
        uint64_t backoff_usec;
        unsigned failures;

        Kick *kicks;
        size_t n_kicks;
        size_t n_allocated;
        bool lib_initialized;
};

static void link_disconnect(BrokerLink *l);
static void link_schedule_reconnect(BrokerLink *l);
static void link_flush(BrokerLink *l);

static Kick *kick_find(BrokerLink *l, const char *client_id) {
        for (size_t i = 0; i < l->n_kicks; i++)
                if (strcmp(l->kicks[i].client_id, client_id) == 0)
                        return &l->kicks[i];
        return NULL;
}

static void kick_remove(BrokerLink *l, Kick *k) {
        size_t i = (size_t) (k - l->kicks);

        free(k->client_id);
        memmove(l->kicks + i, l->kicks + i + 1, (l->n_kicks - i - 1) * sizeof(*l->kicks));
        l->n_kicks--;
}

static void link_update_events(BrokerLink *l) {
        if (!l->io || !l->mosq)
                return;
        (void) sd_event_source_set_io_events(l->io, EPOLLIN | (mosquitto_want_write(l->mosq) ? EPOLLOUT : 0));
}

/* After any libmosquitto call: tear down a lost connection, else keep the write interest right. */
static void link_after_call(BrokerLink *l, int rc) {
        if (rc == MOSQ_ERR_SUCCESS && !l->lost) {
                link_update_events(l);
                return;
        }
        if (l->connected)
                log_notice("Lost the broker connection: %s",
                           rc != MOSQ_ERR_SUCCESS ? mosquitto_strerror(rc) : "disconnected");
        link_disconnect(l);
        if (l->n_kicks > 0)
                link_schedule_reconnect(l);
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        BrokerLink *l = userdata;
        int rc = MOSQ_ERR_SUCCESS;

        if (revents & (EPOLLIN | EPOLLERR | EPOLLHUP))
                rc = mosquitto_loop_read(l->mosq, 1);
        if (rc == MOSQ_ERR_SUCCESS && !l->lost && l->mosq && mosquitto_want_write(l->mosq))
                rc = mosquitto_loop_write(l->mosq, 1);
        link_after_call(l, rc);
        return 0;
}

static int on_misc(sd_event_source *s, uint64_t usec, void *userdata) {
        BrokerLink *l = userdata;
        int rc;

        rc = mosquitto_loop_misc(l->mosq);
        if (rc == MOSQ_ERR_SUCCESS && !l->lost && mosquitto_want_write(l->mosq))
                rc = mosquitto_loop_write(l->mosq, 1);
        link_after_call(l, rc);
        if (l->misc_timer)
                (void) sd_event_source_set_time_relative(l->misc_timer, MISC_INTERVAL_USEC);
        return 0;
}

static void on_connect(struct mosquitto *mosq, void *userdata, int rc, int flags, const mosquitto_property *props) {
        BrokerLink *l = userdata;

        if (rc != 0) {
                l->failures++;
                log_full(l->failures == 1 ? LOG_WARNING : LOG_DEBUG,
                         "The broker refused our connection, will retry: %s", mosquitto_reason_string(rc));
                l->lost = true;
                return;
        }
        log_info("Connected to the broker, %zu kick(s) pending", l->n_kicks);
        l->connected = true;
        l->failures = 0;
        l->backoff_usec = 0;
        link_flush(l);
}

static void on_disconnect(struct mosquitto *mosq, void *userdata, int rc, const mosquitto_property *props) {
        BrokerLink *l = userdata;
        l->lost = true;
}

static void on_publish(struct mosquitto *mosq, void *userdata, int mid, int reason, const mosquitto_property *props) {
        BrokerLink *l = userdata;

        for (size_t i = 0; i < l->n_kicks; i++) {
                Kick *k = &l->kicks[i];
                if (k->mid != mid)
                        continue;
                /* A refusal is final: retrying what the broker rejects would loop forever. */
                if (reason >= 0x80)
                        log_warning("The broker refused to kick '%s': %s", k->client_id, mosquitto_reason_string(reason));
                else
                        log_info("The broker took the kick of '%s'", k->client_id);
                kick_remove(l, k);
                return;
        }
}

static void link_flush(BrokerLink *l) {
        if (!l->connected)
                return;
        for (size_t i = 0; i < l->n_kicks; i++) {
                Kick *k = &l->kicks[i];
                int mid = 0, rc;

                if (k->mid != 0)
                        continue;
                rc = mosquitto_publish_v5(l->mosq, &mid, BROKER_KICK_TOPIC, (int) strlen(k->client_id),
                                          k->client_id, 1, false, NULL);
                if (rc != MOSQ_ERR_SUCCESS) {
                        log_warning("Failed to send the kick of '%s', will retry: %s", k->client_id, mosquitto_strerror(rc));
                        l->lost = true;
                        return;
                }
                k->mid = mid;
        }
}

static void link_disconnect(BrokerLink *l) {
        l->io = sd_event_source_disable_unref(l->io);
        l->misc_timer = sd_event_source_disable_unref(l->misc_timer);
        if (l->mosq) {
                mosquitto_destroy(l->mosq);
                l->mosq = NULL;
        }
        l->connected = false;
        l->lost = false;
        for (size_t i = 0; i < l->n_kicks; i++)
                l->kicks[i].mid = 0;
}

static int link_connect(BrokerLink *l) {
        struct mosquitto *mosq;
        int rc, fd, r;

        mosq = mosquitto_new(BROKER_CLIENT_ID, true, l);
        if (!mosq)
                return -ENOMEM;
        l->mosq = mosq;
        rc = mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
        if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_username_pw_set(mosq, BROKER_USERNAME, NULL);
        if (rc != MOSQ_ERR_SUCCESS)
                return -EINVAL;
        mosquitto_connect_v5_callback_set(mosq, on_connect);
        mosquitto_disconnect_v5_callback_set(mosq, on_disconnect);
        mosquitto_publish_v5_callback_set(mosq, on_publish);

        /* Port 0 means host is a Unix socket path (libmosquitto 2.0 net__try_connect_unix). */
        rc = mosquitto_connect(mosq, l->socket_path, 0, KEEPALIVE_SEC);
        if (rc == MOSQ_ERR_ERRNO)
                return -errno;
        if (rc != MOSQ_ERR_SUCCESS)
                return -ECONNREFUSED;

        fd = mosquitto_socket(mosq);
        if (fd < 0)
                return -ENOTCONN;
        (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
        r = sd_event_add_io(l->event, &l->io, fd, EPOLLIN, on_io, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(l->io, "broker-io");
        r = sd_event_add_time_relative(l->event, &l->misc_timer, CLOCK_MONOTONIC, MISC_INTERVAL_USEC, 0, on_misc, l);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(l->misc_timer, "broker-misc");
        r = sd_event_source_set_enabled(l->misc_timer, SD_EVENT_ON);
        if (r < 0)
                return r;
        link_update_events(l);
        return 0;
}

static int on_reconnect(sd_event_source *s, uint64_t usec, void *userdata) {
        BrokerLink *l = userdata;
        int r;

        if (l->mosq || l->n_kicks == 0)
                return 0;
        r = link_connect(l);
        if (r >= 0)
                return 0;
        l->failures++;
        log_full_errno(l->failures == 1 ? LOG_WARNING : LOG_DEBUG, r,
                       "Cannot reach the broker at '%s' to kick %zu identities, will retry: %m",
                       l->socket_path, l->n_kicks);
        link_disconnect(l);
        link_schedule_reconnect(l);
        return 0;
}

static void link_arm_reconnect(BrokerLink *l, uint64_t delay) {
        int r;

        if (l->reconnect_timer) {
                r = sd_event_source_set_time_relative(l->reconnect_timer, delay);
                if (r >= 0)
                        r = sd_event_source_set_enabled(l->reconnect_timer, SD_EVENT_ONESHOT);
        } else {
                r = sd_event_add_time_relative(l->event, &l->reconnect_timer, CLOCK_MONOTONIC, delay, 0,
                                               on_reconnect, l);
                if (r >= 0)
                        (void) sd_event_source_set_description(l->reconnect_timer, "broker-reconnect");
        }
        if (r < 0)
                log_warning_errno(r, "Failed to schedule a broker connection, kicks wait for the next one: %m");
}

static void link_schedule_reconnect(BrokerLink *l) {
        uint64_t delay, rnd = 0;

        if (l->backoff_usec == 0)
                l->backoff_usec = BACKOFF_MIN_USEC;
        (void) getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK);
        delay = l->backoff_usec / 2 + rnd % (l->backoff_usec / 2 + 1);
        l->backoff_usec = l->backoff_usec * 2 > BACKOFF_MAX_USEC ? BACKOFF_MAX_USEC : l->backoff_usec * 2;
        link_arm_reconnect(l, delay);
}

static bool reconnect_pending(BrokerLink *l) {
        int enabled = SD_EVENT_OFF;

        if (!l->reconnect_timer)
                return false;
        (void) sd_event_source_get_enabled(l->reconnect_timer, &enabled);
        return enabled != SD_EVENT_OFF;
}

int broker_link_kick(BrokerLink *l, const char *client_id) {
        if (kick_find(l, client_id))
                return 0;
        if (l->n_kicks >= BROKER_KICKS_MAX)
                return -ENOBUFS;
        if (l->n_kicks == l->n_allocated) {
                size_t n = l->n_allocated ? l->n_allocated * 2 : 16;
                Kick *k = reallocarray(l->kicks, n, sizeof(*k));
                if (!k)
                        return -ENOMEM;
                l->kicks = k;
                l->n_allocated = n;
        }
        char *id = strdup(client_id);
        if (!id)
                return -ENOMEM;
        l->kicks[l->n_kicks++] = (Kick) { .client_id = id };

        if (l->connected) {
                link_flush(l);
                link_after_call(l, MOSQ_ERR_SUCCESS);
        } else if (!l->mosq && !reconnect_pending(l)) {
                /* Connect from the loop, not from inside the caller's sync callback. */
                link_arm_reconnect(l, 0);
        }
        return 0;
}

void broker_link_unkick(BrokerLink *l, const char *client_id) {
        Kick *k = kick_find(l, client_id);

        if (k && k->mid == 0)
                kick_remove(l, k);
}

size_t broker_link_pending(const BrokerLink *l) {
        return l->n_kicks;
}

bool broker_link_connected(const BrokerLink *l) {
        return l->connected;
}

int broker_link_new(BrokerLink **ret, sd_event *e, const char *socket_path) {
        _cleanup_(broker_link_freep) BrokerLink *l = NULL;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->event = sd_event_ref(e);
        l->socket_path = strdup(socket_path);
        if (!l->socket_path)
                return -ENOMEM;
        if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS)
                return -EIO;
        l->lib_initialized = true;

        *ret = TAKE_PTR(l);
        return 0;
}

BrokerLink *broker_link_free(BrokerLink *l) {
        if (!l)
                return NULL;
        link_disconnect(l);
        l->reconnect_timer = sd_event_source_disable_unref(l->reconnect_timer);
        for (size_t i = 0; i < l->n_kicks; i++)
                free(l->kicks[i].client_id);
        free(l->kicks);
        if (l->lib_initialized)
                mosquitto_lib_cleanup();
        free(l->socket_path);
        sd_event_unref(l->event);
        free(l);
        return NULL;
}
