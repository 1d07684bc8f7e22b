/* Unit tests: libmosquitto on sd-event against a scripted MQTT peer on a real socket */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/runtime/log.h"
#include "proto/runtime/mosq-event.h"
#include "proto/util/cleanup.h"

/*
 * The peer is a plain socket the test writes MQTT bytes to: what matters
 * here is how the adapter drives libmosquitto (reads, writes, losses), not
 * a broker's behaviour, which the integration tests cover with mosquitto.
 */
typedef struct Fixture {
        sd_event *event;
        MosqEvent *conn;
        char dir[64];
        char path[96];
        int listen_fd;
        int peer_fd;
        int connack;      /* -1 until on_connect */
        unsigned processed;
        unsigned lost;
        int lost_rc;
        int lost_error;
        bool free_on_lost; /* as the owners do */
} Fixture;

static void on_connect(struct mosquitto *mosq, void *userdata, int rc) {
        Fixture *f = userdata;
        f->connack = rc;
}

static void on_disconnect(struct mosquitto *mosq, void *userdata, int rc) {
        Fixture *f = userdata;
        mosq_event_lost(f->conn);
}

static void fixture_on_lost(void *userdata, int rc, int error) {
        Fixture *f = userdata;

        f->lost++;
        f->lost_rc = rc;
        f->lost_error = error;
        if (f->free_on_lost)
                f->conn = mosq_event_free(f->conn);
}

static void fixture_on_processed(void *userdata) {
        Fixture *f = userdata;
        f->processed++;
}

static const MosqEventOps ops = {
        .lost = fixture_on_lost,
        .processed = fixture_on_processed,
};

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        assert_non_null(f);
        log_set_max_level(LOG_ERR);
        assert_int_equal(mosquitto_lib_init(), MOSQ_ERR_SUCCESS);
        assert_int_equal(sd_event_new(&f->event), 0);
        snprintf(f->dir, sizeof(f->dir), "/tmp/test-mosq-event-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/broker.sock", f->dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
        f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(f->listen_fd >= 0);
        assert_int_equal(bind(f->listen_fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(f->listen_fd, 4), 0);
        f->peer_fd = -1;
        f->connack = -1;
        f->free_on_lost = true;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        f->conn = mosq_event_free(f->conn);
        safe_close(f->peer_fd);
        safe_close(f->listen_fd);
        (void) unlink(f->path);
        (void) rmdir(f->dir);
        sd_event_unref(f->event);
        mosquitto_lib_cleanup();
        free(f);
        return 0;
}

/* Runs the loop until cond holds; at most ~2 s. */
#define RUN_UNTIL(f, cond)                                                          \
        do {                                                                        \
                for (int _i = 0; _i < 200 && !(cond); _i++)                         \
                        assert_true(sd_event_run((f)->event, 10 * 1000) >= 0);      \
                assert_true(cond);                                                  \
        } while (0)

/* A connected client: CONNECT read by the peer, CONNACK 0 handled by the loop. */
static void connect_client(Fixture *f, uint64_t misc_usec) {
        uint8_t buf[256];
        static const uint8_t connack[] = { 0x20, 0x02, 0x00, 0x00 };

        assert_int_equal(mosq_event_new(&f->conn, f->event, "test-client", misc_usec, &ops, f, "test"), 0);
        struct mosquitto *mosq = mosq_event_client(f->conn);
        mosquitto_connect_callback_set(mosq, on_connect);
        mosquitto_disconnect_callback_set(mosq, on_disconnect);
        /* Port 0: a Unix socket, as the bus connects; the CONNECT goes out at once. */
        assert_int_equal(mosquitto_connect(mosq, f->path, 0, 60), MOSQ_ERR_SUCCESS);
        assert_int_equal(mosq_event_attach(f->conn, false), 0);
        assert_int_equal(mosq_event_attach(f->conn, false), -EBUSY);

        f->peer_fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(f->peer_fd >= 0);
        assert_true(read(f->peer_fd, buf, sizeof(buf)) > 2);
        assert_int_equal(buf[0], 0x10); /* CONNECT */
        assert_int_equal(write(f->peer_fd, connack, sizeof(connack)), (ssize_t) sizeof(connack));
        RUN_UNTIL(f, f->connack == 0);
        assert_true(f->processed > 0);
        assert_int_equal(f->lost, 0);
}

static void test_connack_then_peer_closes(void **state) {
        Fixture *f = *state;

        connect_client(f, 0);
        /* A publish outside the loop goes out (or waits for EPOLLOUT), and the peer sees it. */
        uint8_t buf[64];
        assert_int_equal(mosquitto_publish(mosq_event_client(f->conn), NULL, "t", 1, "x", 0, false),
                         MOSQ_ERR_SUCCESS);
        mosq_event_update(f->conn);
        assert_true(read(f->peer_fd, buf, sizeof(buf)) >= 4);
        assert_int_equal(buf[0], 0x30); /* PUBLISH, QoS 0 */

        /* The peer goes: lost once, with libmosquitto's error, and the owner frees from the callback. */
        f->peer_fd = safe_close(f->peer_fd);
        RUN_UNTIL(f, f->lost > 0);
        assert_int_equal(f->lost, 1);
        assert_int_not_equal(f->lost_rc, MOSQ_ERR_SUCCESS);
        assert_null(f->conn);
}

static void test_lost_from_outside_is_reported_from_the_loop(void **state) {
        Fixture *f = *state;

        connect_client(f, 0);
        mosq_event_lost(f->conn);
        /* Not from within the call: the caller may be inside libmosquitto or about to use the client. */
        assert_int_equal(f->lost, 0);
        assert_true(mosq_event_is_lost(f->conn));
        mosq_event_lost(f->conn);
        RUN_UNTIL(f, f->lost > 0);
        assert_int_equal(f->lost, 1);
        assert_int_equal(f->lost_rc, MOSQ_ERR_SUCCESS);
        assert_int_equal(f->lost_error, 0);
}

static void test_misc_timer_keeps_alive(void **state) {
        Fixture *f = *state;
        uint8_t buf[64];

        /* Keepalive 5 s (libmosquitto's least) with the adapter's own misc timer: a PINGREQ (0xc0) reaches the peer. */
        assert_int_equal(mosq_event_new(&f->conn, f->event, "test-client", 100 * 1000, &ops, f, "test"), 0);
        struct mosquitto *mosq = mosq_event_client(f->conn);
        mosquitto_connect_callback_set(mosq, on_connect);
        mosquitto_disconnect_callback_set(mosq, on_disconnect);
        assert_int_equal(mosquitto_connect(mosq, f->path, 0, 5), MOSQ_ERR_SUCCESS);
        assert_int_equal(mosq_event_attach(f->conn, false), 0);
        f->peer_fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        assert_true(f->peer_fd >= 0);
        assert_true(read(f->peer_fd, buf, sizeof(buf)) > 2);
        static const uint8_t connack[] = { 0x20, 0x02, 0x00, 0x00 };
        assert_int_equal(write(f->peer_fd, connack, sizeof(connack)), (ssize_t) sizeof(connack));
        RUN_UNTIL(f, f->connack == 0);

        ssize_t n = 0;
        for (int i = 0; i < 800 && n <= 0; i++) {
                assert_true(sd_event_run(f->event, 10 * 1000) >= 0);
                n = recv(f->peer_fd, buf, sizeof(buf), MSG_DONTWAIT);
        }
        assert_true(n >= 2);
        assert_int_equal(buf[0], 0xc0);
        assert_int_equal(f->lost, 0);
}

static void test_reset_while_connecting(void **state) {
        Fixture *f = *state;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);

        /*
         * connect_async to a TCP listener that goes away before anyone
         * accepts: the kernel resets the connection, which libmosquitto has
         * not looked at yet; the adapter finds it in SO_ERROR.
         */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        assert_int_equal(listen(fd, 1), 0);

        assert_int_equal(mosq_event_new(&f->conn, f->event, "test-client", 0, &ops, f, "test"), 0);
        assert_int_equal(mosquitto_connect_async(mosq_event_client(f->conn), "127.0.0.1", ntohs(sa.sin_port), 60),
                         MOSQ_ERR_SUCCESS);
        safe_close(fd);
        assert_int_equal(mosq_event_attach(f->conn, true), 0);
        RUN_UNTIL(f, f->lost > 0);
        assert_int_equal(f->lost, 1);
        assert_int_equal(f->lost_rc, MOSQ_ERR_CONN_LOST);
        assert_int_equal(f->lost_error, -ECONNRESET);
        assert_int_equal(f->processed, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_connack_then_peer_closes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lost_from_outside_is_reported_from_the_loop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_misc_timer_keeps_alive, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reset_while_connecting, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
