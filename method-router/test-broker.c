/* A stand-in for the local broker in method-router's unit tests: MQTT v5 on a Unix socket, in the test's own loop */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "method-router/test-broker.h"
#include "proto/ipc/bus.h"
#include "proto/ipc/frame.h"

/* MQTT v5 packet types (high nibble of the first byte) and the properties a libmosquitto client may send. */
enum {
        MQTT_CONNECT = 1,
        MQTT_PUBLISH = 3,
        MQTT_PUBACK = 4,
        MQTT_SUBSCRIBE = 8,
        MQTT_PINGREQ = 12,
        MQTT_DISCONNECT = 14,
};

static void send_all(TestBroker *b, const uint8_t *buf, size_t len) {
        while (len > 0) {
                ssize_t n = send(b->fd, buf, len, MSG_NOSIGNAL);
                if (n < 0 && errno == EINTR)
                        continue;
                assert_true(n > 0);
                buf += n;
                len -= (size_t) n;
        }
}

/* Appends MQTT's variable byte integer; returns its length. */
static size_t put_varint(uint8_t *p, size_t v) {
        size_t n = 0;

        do {
                uint8_t byte = v % 128;
                v /= 128;
                p[n++] = byte | (v > 0 ? 0x80 : 0);
        } while (v > 0);
        return n;
}

/* Reads a variable byte integer from p (at most end): its length, 0 if incomplete. */
static size_t get_varint(const uint8_t *p, const uint8_t *end, size_t *ret) {
        size_t v = 0, mult = 1;

        for (size_t i = 0; i < 4 && p + i < end; i++) {
                v += (p[i] & 0x7f) * mult;
                mult *= 128;
                if (!(p[i] & 0x80)) {
                        *ret = v;
                        return i + 1;
                }
        }
        return 0;
}

static void send_packet(TestBroker *b, uint8_t first, const uint8_t *body, size_t len) {
        uint8_t header[5];
        size_t n;

        header[0] = first;
        n = 1 + put_varint(header + 1, len);
        send_all(b, header, n);
        if (len > 0)
                send_all(b, body, len);
}

static void put_string(uint8_t **p, const char *s, size_t len) {
        (*p)[0] = (uint8_t) (len >> 8);
        (*p)[1] = (uint8_t) len;
        memcpy(*p + 2, s, len);
        *p += 2 + len;
}

/* A string of the packet at *p: a copy, or NULL when it runs past end. */
static char *take_string(const uint8_t **p, const uint8_t *end) {
        size_t len;
        char *s;

        if (end - *p < 2)
                return NULL;
        len = (size_t) (*p)[0] << 8 | (*p)[1];
        if ((size_t) (end - *p) < 2 + len)
                return NULL;
        s = strndup((const char *) *p + 2, len);
        assert_non_null(s);
        *p += 2 + len;
        return s;
}

static bool is_online(const TestBroker *b, const char *client) {
        for (size_t i = 0; i < sizeof(b->online) / sizeof(b->online[0]) && b->online[i]; i++)
                if (client && strcmp(b->online[i], client) == 0)
                        return true;
        return false;
}

static void on_publish(TestBroker *b, uint8_t flags, const uint8_t *p, const uint8_t *end) {
        TestPublish *pub;
        unsigned qos = (flags >> 1) & 3;
        uint8_t pid[2] = {};
        size_t props_len = 0, n;

        assert_true(b->n_published < TEST_BROKER_MAX);
        pub = &b->published[b->n_published++];
        *pub = (TestPublish){};
        pub->topic = take_string(&p, end);
        assert_non_null(pub->topic);
        if (qos > 0) {
                assert_true(end - p >= 2);
                memcpy(pid, p, 2);
                p += 2;
        }
        n = get_varint(p, end, &props_len);
        assert_true(n > 0 && (size_t) (end - p) >= n + props_len);
        p += n;
        for (const uint8_t *q = p, *props_end = p + props_len; q < props_end;) {
                uint8_t id = *q++;
                /* bus.c sends user properties only; anything else is a change this stand-in must learn. */
                assert_int_equal(id, 0x26);
                char *key = take_string(&q, props_end), *value = take_string(&q, props_end);
                assert_non_null(key);
                assert_non_null(value);
                if (strcmp(key, BUS_PROPERTY_CLIENT) == 0 && !pub->client)
                        pub->client = value;
                else if (strcmp(key, BUS_PROPERTY_TOPIC) == 0 && !pub->target)
                        pub->target = value;
                else
                        free(value);
                free(key);
        }
        p += props_len;
        pub->len = (size_t) (end - p);
        pub->payload = strndup((const char *) p, pub->len);
        assert_non_null(pub->payload);

        if (qos == 0)
                return;
        uint8_t reason = strcmp(pub->topic, BUS_TOPIC_DELIVER) == 0 && !is_online(b, pub->client) ?
                                 BUS_REASON_NOT_AUTHORIZED :
                                 BUS_REASON_SUCCESS;
        if (b->hold_pubacks) {
                assert_true(b->n_held < TEST_BROKER_MAX);
                b->held[b->n_held][0] = pid[0];
                b->held[b->n_held][1] = pid[1];
                b->held[b->n_held][2] = reason;
                b->n_held++;
                return;
        }
        send_packet(b, MQTT_PUBACK << 4, (uint8_t[]){ pid[0], pid[1], reason }, 3);
}

static void on_subscribe(TestBroker *b, const uint8_t *p, const uint8_t *end) {
        uint8_t reply[2 + 1 + 16];
        size_t props_len = 0, n, n_reasons = 0;

        assert_true(end - p >= 2);
        memcpy(reply, p, 2);
        reply[2] = 0; /* no properties */
        p += 2;
        n = get_varint(p, end, &props_len);
        assert_true(n > 0);
        p += n + props_len;
        while (p < end) {
                char *filter = take_string(&p, end);
                assert_non_null(filter);
                free(filter);
                assert_true(p < end && n_reasons < 16);
                p++; /* options */
                reply[3 + n_reasons++] = 0x01; /* granted QoS 1 */
                b->n_filters++;
        }
        send_packet(b, 0x90, reply, 3 + n_reasons);
}

/* Handles the whole packets in b->in; keeps a partial one. */
static void process(TestBroker *b) {
        size_t used = 0;

        while (b->fd >= 0 && b->n_in - used >= 2) {
                const uint8_t *p = b->in + used, *end = b->in + b->n_in;
                size_t len, n = get_varint(p + 1, end, &len);
                if (n == 0 || (size_t) (end - p) < 1 + n + len)
                        break;
                const uint8_t *body = p + 1 + n;
                switch (p[0] >> 4) {
                case MQTT_CONNECT:
                        /* Accepted as it is: session not present, success, no properties. */
                        send_packet(b, 0x20, (uint8_t[]){ 0, 0, 0 }, 3);
                        break;
                case MQTT_PUBLISH:
                        on_publish(b, p[0] & 0x0f, body, body + len);
                        break;
                case MQTT_SUBSCRIBE:
                        on_subscribe(b, body, body + len);
                        break;
                case MQTT_PINGREQ:
                        send_packet(b, 0xd0, NULL, 0);
                        break;
                case MQTT_DISCONNECT:
                        test_broker_drop(b);
                        break;
                default:
                        fail_msg("the stand-in broker got an MQTT packet of type %u", p[0] >> 4);
                }
                used += 1 + n + len;
        }
        if (b->fd < 0)
                used = b->n_in;
        memmove(b->in, b->in + used, b->n_in - used);
        b->n_in -= used;
}

static int on_client(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        TestBroker *b = userdata;
        uint8_t buf[4096];
        ssize_t n;

        n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (n <= 0) {
                test_broker_drop(b);
                return 0;
        }
        b->in = realloc(b->in, b->n_in + (size_t) n);
        assert_non_null(b->in);
        memcpy(b->in + b->n_in, buf, (size_t) n);
        b->n_in += (size_t) n;
        process(b);
        return 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        TestBroker *b = userdata;
        int client = accept4(fd, NULL, NULL, SOCK_CLOEXEC);

        if (client < 0)
                return 0;
        /* One bus client at a time: a reconnect replaces the connection before it. */
        test_broker_drop(b);
        b->fd = client;
        assert_int_equal(sd_event_add_io(b->event, &b->source, client, EPOLLIN, on_client, b), 0);
        return 0;
}

void test_broker_start(TestBroker *b, sd_event *e, const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        *b = (TestBroker){ .event = e, .listen_fd = -1, .fd = -1 };
        assert_true(strlen(path) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        b->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(b->listen_fd >= 0);
        (void) unlink(path);
        assert_int_equal(bind(b->listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(b->listen_fd, 4), 0);
        assert_int_equal(sd_event_add_io(e, &b->listen_source, b->listen_fd, EPOLLIN, on_accept, b), 0);
}

void test_broker_drop(TestBroker *b) {
        b->source = sd_event_source_disable_unref(b->source);
        if (b->fd >= 0)
                close(b->fd);
        b->fd = -1;
        b->n_in = 0;
        b->n_held = 0;
}

void test_broker_stop(TestBroker *b) {
        test_broker_drop(b);
        b->listen_source = sd_event_source_disable_unref(b->listen_source);
        if (b->listen_fd >= 0)
                close(b->listen_fd);
        b->listen_fd = -1;
        free(b->in);
        b->in = NULL;
        for (size_t i = 0; i < b->n_published; i++) {
                TestPublish *p = &b->published[i];
                free(p->topic);
                free(p->client);
                free(p->target);
                free(p->payload);
        }
        b->n_published = 0;
}

void test_broker_release(TestBroker *b) {
        b->hold_pubacks = false;
        for (size_t i = 0; i < b->n_held && b->fd >= 0; i++)
                send_packet(b, MQTT_PUBACK << 4, b->held[i], 3);
        b->n_held = 0;
}

void test_broker_send(TestBroker *b, const char *topic, const char *client, const void *payload, size_t len) {
        size_t topic_len = strlen(topic), client_len = client ? strlen(client) : 0;
        size_t props_len = client ? 1 + 2 + strlen(BUS_PROPERTY_CLIENT) + 2 + client_len : 0;
        uint8_t *body = malloc(2 + topic_len + 4 + props_len + len), *p = body;

        assert_non_null(body);
        assert_true(b->fd >= 0);
        put_string(&p, topic, topic_len);
        p += put_varint(p, props_len);
        if (client) {
                *p++ = 0x26;
                put_string(&p, BUS_PROPERTY_CLIENT, strlen(BUS_PROPERTY_CLIENT));
                put_string(&p, client, client_len);
        }
        if (len > 0)
                memcpy(p, payload, len);
        p += len;
        send_packet(b, MQTT_PUBLISH << 4, body, (size_t) (p - body));
        free(body);
}

static bool publish_matches(const TestPublish *p, const char *topic, const char *client) {
        return (!topic || strcmp(p->topic, topic) == 0) && (!client || (p->client && strcmp(p->client, client) == 0));
}

const TestPublish *test_broker_find(const TestBroker *b, const char *topic, const char *client, size_t n) {
        for (size_t i = 0; i < b->n_published; i++)
                if (publish_matches(&b->published[i], topic, client) && n-- == 0)
                        return &b->published[i];
        return NULL;
}

typedef struct Wanted {
        const TestBroker *broker;
        const char *topic, *client;
        size_t n;
} Wanted;

static bool has_publish(void *userdata) {
        const Wanted *w = userdata;
        return test_broker_find(w->broker, w->topic, w->client, w->n) != NULL;
}

const TestPublish *test_broker_wait(TestBroker *b, const char *topic, const char *client, size_t n) {
        Wanted w = { b, topic, client, n };

        test_broker_run_until(b->event, has_publish, &w);
        return test_broker_find(b, topic, client, n);
}

const char *test_publish_rid(const TestPublish *p) {
        const char *rid;

        assert_non_null(p->target);
        rid = strstr(p->target, "/?$rid=");
        assert_non_null(rid);
        return rid + strlen("/?$rid=");
}

size_t test_broker_count(const TestBroker *b, const char *topic, const char *client) {
        size_t n = 0;

        for (size_t i = 0; i < b->n_published; i++)
                n += publish_matches(&b->published[i], topic, client);
        return n;
}

static void on_flushed(Bus *bus, int reason, void *userdata) {
        *(int *) userdata = reason >= 0 ? 1 : -1;
}

static bool flushed(void *userdata) {
        return *(int *) userdata != 0;
}

void test_broker_flush(TestBroker *b, Bus *bus) {
        int done = 0;

        assert_false(b->hold_pubacks);
        assert_int_equal(bus_publish(bus, "$edgehub/test-flush", "", 0, NULL, NULL, on_flushed, &done), 0);
        test_broker_run_until(b->event, flushed, &done);
        assert_int_equal(done, 1);
}

void test_broker_run_until(sd_event *e, bool (*done)(void *userdata), void *userdata) {
        uint64_t deadline = now_usec() + 10u * 1000u * 1000u;

        while (!done(userdata)) {
                if (now_usec() > deadline)
                        fail_msg("what the test waits for did not happen within 10 s");
                assert_true(sd_event_run(e, 100u * 1000u) >= 0);
        }
}

void test_broker_run_for(sd_event *e, uint64_t usec) {
        uint64_t end = now_usec() + usec;

        for (uint64_t now; (now = now_usec()) < end;)
                assert_true(sd_event_run(e, end - now) >= 0);
}
