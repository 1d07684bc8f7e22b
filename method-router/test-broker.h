/* A stand-in for the local broker in method-router's unit tests: MQTT v5 on a Unix socket, in the test's own loop */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

/*
 * The calls under test live on the bus: a call starts with a publish and
 * goes on with its PUBACK. This stand-in speaks just enough MQTT v5 for one
 * bus client (CONNECT, SUBSCRIBE, PUBLISH at QoS 1, PINGREQ) and answers a
 * publish on $edgehub/deliver as the plugin does: reason 0x87 when the
 * target (user property "client") is not in online[]. It records every
 * publish for the test to look at, and sends the client messages as the
 * plugin would put them on the bus. It runs on the loop of the code under
 * test, so a test drives both with test_broker_run_until(). The real broker
 * with the real plugin is tests/integration/test_methods.py's.
 */
typedef struct TestPublish {
        char *topic;
        char *client; /* user property "client", or NULL */
        char *target; /* user property "topic", or NULL */
        char *payload; /* NUL-terminated */
        size_t len;
} TestPublish;

#define TEST_BROKER_MAX 256u

typedef struct TestBroker {
        sd_event *event;
        int listen_fd;
        int fd; /* the client, or -1 */
        sd_event_source *listen_source, *source;
        uint8_t *in;
        size_t n_in;
        const char *online[8];   /* deliver targets that are connected */
        bool hold_pubacks;       /* keep PUBACKs back until test_broker_release() */
        uint8_t held[TEST_BROKER_MAX][3];
        size_t n_held;
        size_t n_filters;        /* SUBSCRIBE filters seen */
        TestPublish published[TEST_BROKER_MAX];
        size_t n_published;
} TestBroker;

/* Listens on path (on e) until test_broker_stop(); asserts. */
void test_broker_start(TestBroker *b, sd_event *e, const char *path);
void test_broker_stop(TestBroker *b);
/* Closes the client's connection (the broker went away); the listener stays. */
void test_broker_drop(TestBroker *b);
/* Sends the held PUBACKs. */
void test_broker_release(TestBroker *b);
/* A QoS 0 publish to the client with user property "client" (if not NULL). */
void test_broker_send(TestBroker *b, const char *topic, const char *client, const void *payload, size_t len);

/* The n-th recorded publish whose topic is topic and "client" is client (either NULL: any), or NULL. */
const TestPublish *test_broker_find(const TestBroker *b, const char *topic, const char *client, size_t n);
/* test_broker_find(), after running the loop until it finds it. */
const TestPublish *test_broker_wait(TestBroker *b, const char *topic, const char *client, size_t n);
/* How many recorded publishes match, as test_broker_find(). */
size_t test_broker_count(const TestBroker *b, const char *topic, const char *client);

/* The rid at the end of p's topic property ("...?$rid=R"); asserts it is there. */
const char *test_publish_rid(const TestPublish *p);

typedef struct Bus Bus;
/*
 * A round trip: bus publishes a marker and the loop runs until its PUBACK.
 * Then the broker has everything bus sent before, and bus has handled what
 * the broker sent before (not while PUBACKs are held).
 */
void test_broker_flush(TestBroker *b, Bus *bus);

/* Runs e until done(userdata) is true; fails the test after 10 s. */
void test_broker_run_until(sd_event *e, bool (*done)(void *userdata), void *userdata);
/* Runs e for usec, whatever happens (to see that nothing does). */
void test_broker_run_for(sd_event *e, uint64_t usec);
