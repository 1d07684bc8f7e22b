/* Tests of CONNECT checks, presence reports and disconnects */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "broker-plugin/auth-verdict.h"
#include "broker-plugin/auth.h"
#include "broker-plugin/broker-api.h"
#include "broker-plugin/disconnect.h"
#include "broker-plugin/message.h"
#include "broker-plugin/plugin.h"
#include "broker-plugin/test-broker-stubs.h"
#include "broker-plugin/test-fake-daemon.h"
#include "proto/ipc/bus.h"
#include "proto/ipc/wire.h"
#include "proto/util/cleanup.h"

#define SOCK "/run/edgehub/broker.sock"
#define TCP "192.0.2.1"
#define PW "SharedAccessSignature sr=hub%2Fdevices%2Fd&sig=x&se=1"

typedef struct PlanCase {
        const char *address;
        const char *client_id;
        const char *username;
        const char *password;
        AuthPlan want;
        bool cert;
} PlanCase;

static const PlanCase plan_cases[] = {
        { TCP, "d", "hub/d/?api-version=2021-04-12", PW, AUTH_ASK_AUTH_CACHE },
        { TCP, "d", "hub.azure-devices.net/d/?api-version=2021-04-12&DeviceClientType=x", PW, AUTH_ASK_AUTH_CACHE },
        { TCP, "d/m", "hub/d/m/?api-version=2021-04-12", PW, AUTH_ASK_AUTH_CACHE },
        { SOCK, "d", "hub/d/?api-version=2021-04-12", PW, AUTH_ASK_AUTH_CACHE },
        /* Our daemons: by socket and username, no password. */
        { SOCK, "$edgehub/hub-store", "$edgehub/hub-store", NULL, AUTH_ACCEPT_INTERNAL },
        { "unix-socket", "anything", "$edgehub/agent", "", AUTH_ACCEPT_INTERNAL },
        { TCP, "$edgehub/hub-store", "$edgehub/hub-store", NULL, AUTH_REFUSE },
        { TCP, "$edgehub/hub-store", "$edgehub/hub-store", PW, AUTH_REFUSE },
        { "/tmp/other.sock", "x", "$edgehub/hub-store", NULL, AUTH_REFUSE },
        { SOCK, "x", "$edgehub/", NULL, AUTH_REFUSE },
        /* X.509 devices: a certificate and no password; auth-cache decides which the identity needs. */
        { TCP, "d", "hub/d/?api-version=2021-04-12", NULL, AUTH_ASK_AUTH_CACHE, true },
        { TCP, "d", "hub/d/?api-version=2021-04-12", "", AUTH_ASK_AUTH_CACHE, true },
        { TCP, "d", NULL, NULL, AUTH_REFUSE, true },
        { TCP, "e", "hub/d/?api-version=1", NULL, AUTH_REFUSE, true },
        /* Missing credentials. */
        { TCP, "d", NULL, NULL, AUTH_REFUSE },
        { TCP, "d", "hub/d/?api-version=1", NULL, AUTH_REFUSE },
        { TCP, "d", "hub/d/?api-version=1", "", AUTH_REFUSE },
        { TCP, "d", NULL, PW, AUTH_REFUSE },
        /* Client ids that are not identities, or not the username's. */
        { TCP, "d/m/x", "hub/d/m/?api-version=1", PW, AUTH_REFUSE },
        { TCP, "d+", "hub/d+/?api-version=1", PW, AUTH_REFUSE },
        { TCP, "#", "hub/#/?api-version=1", PW, AUTH_REFUSE },
        { TCP, "", "hub/d/?api-version=1", PW, AUTH_REFUSE },
        { TCP, NULL, "hub/d/?api-version=1", PW, AUTH_REFUSE },
        { TCP, "e", "hub/d/?api-version=1", PW, AUTH_REFUSE },
        { TCP, "d", "hub/d/m/?api-version=1", PW, AUTH_REFUSE },
        { TCP, "d/m", "hub/d/?api-version=1", PW, AUTH_REFUSE },
        { TCP, "d/m", "hub/d/n/?api-version=1", PW, AUTH_REFUSE },
        { TCP, "d", "not a username", PW, AUTH_REFUSE },
        { TCP, "$edgehub/x", "hub/$edgehub/x/?api-version=1", PW, AUTH_REFUSE },
        /* A device may not take a daemon's client id (and its session). */
        { TCP, "$edgehub-auth-cache", "hub/$edgehub-auth-cache/?api-version=1", PW, AUTH_REFUSE },
        { SOCK, "$edgehub-auth-cache", "hub/$edgehub-auth-cache/?api-version=1", PW, AUTH_REFUSE },
};

static void test_auth_plan(void **state) {
        unsigned failures = 0;

        for (size_t i = 0; i < ELEMENTSOF(plan_cases); i++) {
                const PlanCase *t = &plan_cases[i];
                const char *why;
                Client c;

                AuthPlan got = auth_plan(t->address, SOCK, t->client_id, t->username, t->password, t->cert, &c, &why);
                if (got != t->want || (got == AUTH_REFUSE) != (why != NULL)) {
                        fprintf(stderr, "case %zu ('%s', '%s'): got %d, want %d\n", i, t->client_id, t->username,
                                got, t->want);
                        failures++;
                }
        }
        assert_int_equal(failures, 0);
}

/* ---- what mosquitto answers, from auth-cache's answer ---- */

typedef struct VerdictCase {
        int call;
        int status;
        int want;
} VerdictCase;

static const VerdictCase verdict_cases[] = {
        { 0, 0, MOSQ_ERR_SUCCESS },
        /* auth-cache answered: the credentials are wrong. */
        { 0, -EACCES, MOSQ_ERR_AUTH },
        { 0, -ENOENT, MOSQ_ERR_AUTH },
        { 0, -EPERM, MOSQ_ERR_AUTH },
        { 0, -EINVAL, MOSQ_ERR_AUTH },
        { 0, -EKEYEXPIRED, MOSQ_ERR_AUTH },
        { 0, -EKEYREJECTED, MOSQ_ERR_AUTH },
        { 0, -EKEYREVOKED, MOSQ_ERR_AUTH },
        /* auth-cache answered that it cannot tell now. */
        { 0, -EAGAIN, AUTH_VERDICT_UNAVAILABLE },
        { 0, -EBUSY, AUTH_VERDICT_UNAVAILABLE },
        { 0, -EIO, AUTH_VERDICT_UNAVAILABLE },
        /* auth-cache did not answer: not running, restarting, stopped, backing off, garbled. */
        { -ENOENT, 0, AUTH_VERDICT_UNAVAILABLE },
        { -ECONNREFUSED, 0, AUTH_VERDICT_UNAVAILABLE },
        { -ETIMEDOUT, 0, AUTH_VERDICT_UNAVAILABLE },
        { -EAGAIN, 0, AUTH_VERDICT_UNAVAILABLE },
        { -EPIPE, 0, AUTH_VERDICT_UNAVAILABLE },
        { -ECONNRESET, 0, AUTH_VERDICT_UNAVAILABLE },
        { -EBADMSG, 0, AUTH_VERDICT_UNAVAILABLE },
        /* A failed call's status is meaningless, even one that looks like a refusal. */
        { -ECONNREFUSED, -EACCES, AUTH_VERDICT_UNAVAILABLE },
};

static void test_auth_verdict(void **state) {
        unsigned failures = 0;

        /* mosquitto 2.0.11 closes without a CONNACK for any code but these three (handle__connect()). */
        assert_int_not_equal(AUTH_VERDICT_UNAVAILABLE, MOSQ_ERR_SUCCESS);
        assert_int_not_equal(AUTH_VERDICT_UNAVAILABLE, MOSQ_ERR_AUTH);
        assert_int_not_equal(AUTH_VERDICT_UNAVAILABLE, MOSQ_ERR_PLUGIN_DEFER);

        for (size_t i = 0; i < ELEMENTSOF(verdict_cases); i++) {
                const VerdictCase *t = &verdict_cases[i];
                int got = auth_verdict(t->call, t->status);
                if (got != t->want) {
                        fprintf(stderr, "case %zu (call %d, status %d): got %d, want %d\n", i, t->call, t->status,
                                got, t->want);
                        failures++;
                }
        }
        assert_int_equal(failures, 0);
}

/* ---- the callbacks, against a scripted auth-cache; presence goes out on the bus ---- */

typedef struct Fixture {
        char dir[64];
        char auth_path[128];
        Plugin plugin;
        FakeDaemon auth;
} Fixture;

static int fixture_setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        assert_int_equal(fake_runtime_dir(f->dir), 0);
        snprintf(f->auth_path, sizeof(f->auth_path), "%s/auth-cache.sock", f->dir);
        f->plugin = (Plugin){
                .broker_socket = (char *) SOCK,
                .presence = PRESENCE_NULL,
                .store_ratelimit = RATELIMIT_INIT(1000000, 100),
                .message_ratelimit = RATELIMIT_INIT(1000000, 100),
                .auth_ratelimit = RATELIMIT_INIT(1000000, 100),
        };
        /* Generous: a fake daemon under ASan on a loaded machine may take a while to answer. */
        assert_int_equal(backend_init(&f->plugin.backend, f->auth_path, 5000000), 0);
        f->auth = (FakeDaemon){ .pid = -1, .report_fd = -1 };
        stub_announce_reset();
        *state = f;
        return 0;
}

static int fixture_teardown(void **state) {
        Fixture *f = *state;
        fake_daemon_stop(&f->auth);
        backend_deinit(&f->plugin.backend);
        presence_deinit(&f->plugin.presence);
        token_expiry_deinit(&f->plugin.expiry);
        (void) rmdir(f->dir);
        free(f);
        return 0;
}

static int connect_client(Fixture *f, struct mosquitto *client, const char *password) {
        struct mosquitto_evt_basic_auth ed = {
                .client = client,
                .username = (char *) client->username,
                .password = (char *) password,
        };
        return auth_basic_callback(MOSQ_EVT_BASIC_AUTH, &ed, &f->plugin);
}

static void disconnect_client(Fixture *f, struct mosquitto *client) {
        struct mosquitto_evt_disconnect ed = { .client = client, .reason = -1 };
        assert_int_equal(disconnect_callback(MOSQ_EVT_DISCONNECT, &ed, &f->plugin), MOSQ_ERR_SUCCESS);
}

static void assert_string_field(const Frame *frame, uint16_t tag, const char *want) {
        _cleanup_free_ char *s = NULL;
        assert_int_equal(frame_get_string(frame, tag, &s), 0);
        assert_string_equal(s, want);
}

/* The next announcement on the bus is identity's presence. */
static void assert_presence(const char *identity, bool connected) {
        char want[256];
        const char *got = stub_announce_take();

        snprintf(want, sizeof(want), "%s %s %s", BUS_TOPIC_PRESENCE, identity,
                 connected ? "connected" : "disconnected");
        assert_non_null(got);
        assert_string_equal(got, want);
}

static void test_auth_callback(void **state) {
        Fixture *f = *state;
        struct mosquitto old = { .id = "d", .address = TCP, .username = "hub/d/?api-version=1" };
        struct mosquitto new = old;
        struct mosquitto module = { .id = "d/m", .address = TCP, .username = "hub/d/m/?api-version=1" };
        struct mosquitto daemon = { .id = "$edgehub/x", .address = SOCK, .username = "$edgehub/x" };
        static const FakeStep auth_steps[] = {
                { WIRE_AUTH_REPLY, 0, 0, "d" },
                { WIRE_AUTH_REPLY, 0 },
                { WIRE_AUTH_REPLY, EACCES },
                { WIRE_AUTH_REPLY, ENOENT },
                { WIRE_AUTH_REPLY, EAGAIN },
                { WIRE_AUTH_REPLY, 0, 0, "e" },
                { WIRE_AUTH_REPLY, 0 },
        };
        Frame req;

        /* auth-cache not running: closed without a CONNACK, which the SDKs retry; never "not authorised". */
        assert_int_equal(connect_client(f, &old, PW), AUTH_VERDICT_UNAVAILABLE);
        /* internal: accepted without asking anyone */
        assert_int_equal(connect_client(f, &daemon, NULL), MOSQ_ERR_SUCCESS);

        assert_int_equal(fake_daemon_start(&f->auth, f->auth_path, auth_steps, ELEMENTSOF(auth_steps)), 0);

        assert_int_equal(connect_client(f, &old, PW), MOSQ_ERR_SUCCESS);
        assert_int_equal(fake_daemon_next(&f->auth, &req), 0);
        assert_int_equal(req.type, WIRE_AUTH_REQUEST);
        assert_string_field(&req, WIRE_CLIENT_ID, "d");
        assert_string_field(&req, WIRE_USERNAME, "hub/d/?api-version=1");
        const FrameField *pw = frame_get(&req, WIRE_PASSWORD);
        assert_non_null(pw);
        assert_int_equal(pw->len, strlen(PW));
        assert_memory_equal(pw->data, PW, strlen(PW));
        assert_presence("d", true);
        /* Admitted with its token's expiry (se=1): the next tick closes it (token-expiry.h). */
        assert_true(token_expiry_is_live(&f->plugin.expiry, &old));
        assert_int_equal(f->plugin.expiry.next_due_sec, 1);

        /* A second connection takes the client id over: the daemons already know it is connected. */
        assert_int_equal(connect_client(f, &new, PW), MOSQ_ERR_SUCCESS);
        assert_int_equal(fake_daemon_next(&f->auth, &req), 0);
        disconnect_client(f, &old);
        assert_int_equal(presence_count(&f->plugin.presence, "d"), 1);

        assert_int_equal(connect_client(f, &module, PW), MOSQ_ERR_AUTH); /* EACCES */
        assert_int_equal(connect_client(f, &module, PW), MOSQ_ERR_AUTH); /* ENOENT */
        assert_int_equal(connect_client(f, &module, PW), AUTH_VERDICT_UNAVAILABLE); /* EAGAIN: cannot tell now */
        assert_int_equal(connect_client(f, &module, PW), MOSQ_ERR_AUTH); /* admitted as someone else */
        assert_int_equal(presence_count(&f->plugin.presence, "d/m"), 0);
        assert_false(token_expiry_is_live(&f->plugin.expiry, &module));
        assert_false(token_expiry_is_live(&f->plugin.expiry, &daemon));
        /* Refused clients and internal ones end without a report. */
        disconnect_client(f, &module);
        disconnect_client(f, &daemon);

        /* The new connection ends: now the identity is gone. */
        disconnect_client(f, &new);
        assert_presence("d", false);
        /* The old session's end reported once more (mosquitto does that on a takeover): nothing. */
        disconnect_client(f, &old);

        assert_int_equal(connect_client(f, &module, PW), MOSQ_ERR_SUCCESS);
        assert_presence("d/m", true);
        assert_null(stub_announce_take());
}

static void test_auth_refused_locally(void **state) {
        Fixture *f = *state;
        struct mosquitto impostor = { .id = "e", .address = TCP, .username = "hub/d/?api-version=1" };
        struct mosquitto outsider = { .id = "$edgehub/x", .address = TCP, .username = "$edgehub/x" };
        static const FakeStep auth_steps[] = { { WIRE_AUTH_REPLY, 0 } };
        Frame req;

        assert_int_equal(fake_daemon_start(&f->auth, f->auth_path, auth_steps, ELEMENTSOF(auth_steps)), 0);
        assert_int_equal(connect_client(f, &impostor, PW), MOSQ_ERR_AUTH);
        assert_int_equal(connect_client(f, &outsider, NULL), MOSQ_ERR_AUTH);
        assert_int_equal(connect_client(f, &outsider, PW), MOSQ_ERR_AUTH);
        /* auth-cache was never asked. */
        assert_int_equal(fake_daemon_next(&f->auth, &req), -ETIMEDOUT);
}

static void test_auth_timeout(void **state) {
        Fixture *f = *state;
        struct mosquitto device = { .id = "d", .address = TCP, .username = "hub/d/?api-version=1" };
        static const FakeStep auth_steps[] = { { WIRE_AUTH_REPLY, 0, 3000 } };

        /* A 100 ms deadline against an auth-cache that answers after 3 s. */
        backend_deinit(&f->plugin.backend);
        assert_int_equal(backend_init(&f->plugin.backend, f->auth_path, 100000), 0);
        assert_int_equal(fake_daemon_start(&f->auth, f->auth_path, auth_steps, ELEMENTSOF(auth_steps)), 0);
        uint64_t t0 = now_usec();
        assert_int_equal(connect_client(f, &device, PW), AUTH_VERDICT_UNAVAILABLE);
        assert_true(now_usec() - t0 < 2000000);
        /* Backing off: closed at once, still without "not authorised". */
        t0 = now_usec();
        assert_int_equal(connect_client(f, &device, PW), AUTH_VERDICT_UNAVAILABLE);
        assert_true(now_usec() - t0 < 20000);
        assert_int_equal(presence_count(&f->plugin.presence, "d"), 0);
}

/* The next announcement is "connected" for one of want[0..2), to asker only, not seen before. */
static void assert_presence_of_either(const char *asker, const char *want[static 2], bool seen[static 2]) {
        const char *got = stub_announce_take();
        char line[256];

        assert_non_null(got);
        for (size_t i = 0; i < 2; i++) {
                snprintf(line, sizeof(line), "@%s %s %s connected", asker, BUS_TOPIC_PRESENCE, want[i]);
                if (strcmp(got, line) == 0) {
                        assert_false(seen[i]);
                        seen[i] = true;
                        return;
                }
        }
        fail_msg("unexpected announcement '%s'", got);
}

static int presence_query(Fixture *f, struct mosquitto *from) {
        struct mosquitto_evt_message ed = {
                .client = from, .topic = (char *) BUS_TOPIC_PRESENCE_QUERY, .payload = (void *) "", .qos = 1,
        };
        return message_callback(MOSQ_EVT_MESSAGE, &ed, &f->plugin);
}

/*
 * A daemon (re)joins the bus, e.g. a restarted hub-store with an empty
 * presence set: its query is answered, to it alone, with every connected
 * identity once.
 */
static void test_presence_query(void **state) {
        Fixture *f = *state;
        struct mosquitto old = { .id = "d", .address = TCP, .username = "hub/d/?api-version=1" };
        struct mosquitto new = old;
        struct mosquitto module = { .id = "d/m", .address = TCP, .username = "hub/d/m/?api-version=1" };
        struct mosquitto daemon = { .id = "$edgehub-hub-store", .address = SOCK, .username = "$edgehub/hub-store" };
        static const FakeStep auth_steps[] = {
                { WIRE_AUTH_REPLY, 0 },
                { WIRE_AUTH_REPLY, 0 },
                { WIRE_AUTH_REPLY, 0 },
        };
        const char *both[2] = { "d", "d/m" };
        bool seen[2] = {};

        /* Nobody connected: no answer. */
        assert_int_equal(presence_query(f, &daemon), MOSQ_ERR_SUCCESS);
        assert_null(stub_announce_take());

        assert_int_equal(fake_daemon_start(&f->auth, f->auth_path, auth_steps, ELEMENTSOF(auth_steps)), 0);
        /* "d" twice (a takeover in progress), "d/m" once. */
        assert_int_equal(connect_client(f, &old, PW), MOSQ_ERR_SUCCESS);
        assert_presence("d", true);
        assert_int_equal(connect_client(f, &new, PW), MOSQ_ERR_SUCCESS);
        assert_int_equal(connect_client(f, &module, PW), MOSQ_ERR_SUCCESS);
        assert_presence("d/m", true);
        assert_null(stub_announce_take());

        assert_int_equal(presence_query(f, &daemon), MOSQ_ERR_SUCCESS);
        assert_presence_of_either(daemon.id, both, seen);
        assert_presence_of_either(daemon.id, both, seen);
        assert_null(stub_announce_take());

        /* A device cannot ask. */
        assert_int_equal(presence_query(f, &module), MOSQ_ERR_ACL_DENIED);
        assert_null(stub_announce_take());

        disconnect_client(f, &module);
        assert_presence("d/m", false);
        assert_int_equal(presence_query(f, &daemon), MOSQ_ERR_SUCCESS);
        assert_string_equal(stub_announce_take(), "@$edgehub-hub-store " BUS_TOPIC_PRESENCE " d connected");
        assert_null(stub_announce_take());
}

/* A device that presents a certificate: auth-cache gets its DER, and no password when it sent none. */
static void test_auth_certificate(void **state) {
        Fixture *f = *state;
        EVP_PKEY *k = EVP_EC_gen("P-256");
        X509 *cert = X509_new();
        unsigned char *der = NULL;
        int der_len;
        static const FakeStep auth_steps[] = {
                { WIRE_AUTH_REPLY, 0, 0, "x" },
                { WIRE_AUTH_REPLY, EACCES },
        };
        Frame req;

        assert_non_null(k);
        assert_non_null(cert);
        X509_set_version(cert, 2);
        X509_gmtime_adj(X509_getm_notBefore(cert), 0);
        X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
        X509_set_pubkey(cert, k);
        assert_true(X509_sign(cert, k, EVP_sha256()) > 0);
        der_len = i2d_X509(cert, &der);
        assert_true(der_len > 0);

        struct mosquitto x = { .id = "x", .address = TCP, .username = "hub/x/?api-version=1", .cert = cert };
        struct mosquitto none = { .id = "y", .address = TCP, .username = "hub/y/?api-version=1" };

        assert_int_equal(fake_daemon_start(&f->auth, f->auth_path, auth_steps, ELEMENTSOF(auth_steps)), 0);

        assert_int_equal(connect_client(f, &x, NULL), MOSQ_ERR_SUCCESS);
        assert_int_equal(fake_daemon_next(&f->auth, &req), 0);
        assert_int_equal(req.type, WIRE_AUTH_REQUEST);
        assert_string_field(&req, WIRE_CLIENT_ID, "x");
        assert_null(frame_get(&req, WIRE_PASSWORD));
        const FrameField *c = frame_get(&req, WIRE_CERTIFICATE);
        assert_non_null(c);
        assert_int_equal(c->len, (size_t) der_len);
        assert_memory_equal(c->data, der, (size_t) der_len);
        assert_presence("x", true);

        /* auth-cache refuses (e.g. a wrong thumbprint): CONNACK not authorised. */
        x.id = "x2";
        x.username = "hub/x2/?api-version=1";
        assert_int_equal(connect_client(f, &x, NULL), MOSQ_ERR_AUTH);

        /* Neither a password nor a certificate: refused before asking anyone. */
        assert_int_equal(connect_client(f, &none, NULL), MOSQ_ERR_AUTH);

        OPENSSL_free(der);
        X509_free(cert);
        EVP_PKEY_free(k);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_auth_plan),
                cmocka_unit_test(test_auth_verdict),
                cmocka_unit_test_setup_teardown(test_auth_callback, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_auth_certificate, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_auth_refused_locally, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_auth_timeout, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_presence_query, fixture_setup, fixture_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
