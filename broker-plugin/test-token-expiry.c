/* Tests of token deadlines per connection, and of Wills (token-expiry.h, will.h) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker-plugin/acl.h"
#include "broker-plugin/broker-api.h"
#include "broker-plugin/plugin.h"
#include "broker-plugin/test-broker-stubs.h"
#include "broker-plugin/test-fake-daemon.h"
#include "broker-plugin/token-expiry.h"
#include "broker-plugin/will.h"
#include "proto/iothub/sas-token.h"
#include "proto/ipc/wire.h"
#include "proto/util/cleanup.h"

#define SOCK "/run/edgehub/broker.sock"

static void test_table(void **state) {
        _cleanup_(token_expiry_deinit) TokenExpiry t = TOKEN_EXPIRY_NULL;
        int a = 0, b = 0, c = 0;
        char *ids[4];

        assert_int_equal(token_expiry_add(&t, &a, "d1", 100), 0);
        assert_int_equal(token_expiry_add(&t, &b, "d2", 0), 0);
        assert_int_equal(t.next_due_sec, 100);
        assert_true(token_expiry_is_live(&t, &a));
        assert_true(token_expiry_is_live(&t, &b));
        assert_false(token_expiry_is_live(&t, &c));

        /* Not due yet; a deadline of 0 is never due. */
        assert_int_equal(token_expiry_due(&t, 99, ids, 4), 0);
        assert_int_equal(token_expiry_due(&t, 100, ids, 4), 1);
        assert_string_equal(ids[0], "d1");
        free(ids[0]);
        /* Returned once: the kick is under way. */
        assert_int_equal(token_expiry_due(&t, 1000, ids, 4), 0);
        assert_int_equal(t.next_due_sec, 0);

        /* A takeover: the old connection is no longer live, nor kicked for its old token. */
        assert_int_equal(token_expiry_add(&t, &a, "d1", 50), 0); /* the broker reused a's memory */
        assert_int_equal(token_expiry_add(&t, &c, "d1", 500), 0);
        assert_false(token_expiry_is_live(&t, &a));
        assert_true(token_expiry_is_live(&t, &c));
        assert_int_equal(token_expiry_due(&t, 200, ids, 4), 0);
        assert_int_equal(t.next_due_sec, 500);

        token_expiry_remove(&t, &a);
        token_expiry_remove(&t, &a);
        assert_int_equal(t.n, 2);
        token_expiry_remove(&t, &c);
        assert_false(token_expiry_is_live(&t, &c));
}

static void test_many_connections(void **state) {
        _cleanup_(token_expiry_deinit) TokenExpiry t = TOKEN_EXPIRY_NULL;
        static char conn[200];
        char name[16];

        /* Added and removed out of address order: every lookup still finds exactly the live ones. */
        for (size_t k = 0; k < ELEMENTSOF(conn); k++) {
                size_t i = (k * 67) % ELEMENTSOF(conn);
                snprintf(name, sizeof(name), "d%zu", i);
                assert_int_equal(token_expiry_add(&t, &conn[i], name, 0), 0);
        }
        for (size_t i = 0; i < ELEMENTSOF(conn); i += 3)
                token_expiry_remove(&t, &conn[i]);
        for (size_t i = 0; i < ELEMENTSOF(conn); i++)
                assert_true(token_expiry_is_live(&t, &conn[i]) == (i % 3 != 0));
        for (size_t i = 1; i < t.n; i++)
                assert_true((uintptr_t) t.entries[i - 1].connection < (uintptr_t) t.entries[i].connection);
}

static void test_due_is_bounded(void **state) {
        _cleanup_(token_expiry_deinit) TokenExpiry t = TOKEN_EXPIRY_NULL;
        int conn[5] = { 0 };
        char *ids[2];
        char name[8];

        for (size_t i = 0; i < 5; i++) {
                snprintf(name, sizeof(name), "d%zu", i);
                assert_int_equal(token_expiry_add(&t, &conn[i], name, 10 + i), 0);
        }
        /* Two per call; the rest on later calls. */
        size_t total = 0;
        for (int round = 0; round < 4; round++) {
                int n = token_expiry_due(&t, 100, ids, 2);
                assert_true(n >= 0 && n <= 2);
                for (int i = 0; i < n; i++)
                        free(ids[i]);
                total += (size_t) n;
        }
        assert_int_equal(total, 5);
}

static void test_password(void **state) {
        _cleanup_free_ char *token = NULL;

        assert_int_equal(sas_token_mint("hub/devices/d", "a2V5", 1234567, &token), 0);
        assert_int_equal(token_expiry_of_password(token), 1234567);
        assert_int_equal(token_expiry_of_password("not a token"), 0);
        assert_int_equal(token_expiry_of_password(NULL), 0);
}

static void test_tick_kicks_expired(void **state) {
        Plugin p = { .expiry = TOKEN_EXPIRY_NULL };
        int a = 0, b = 0;

        stub_connected[0] = "old";
        stub_connected[1] = "new";
        stub_kick_count = 0;
        assert_int_equal(token_expiry_add(&p.expiry, &a, "old", 1), 0); /* 1970 */
        assert_int_equal(token_expiry_add(&p.expiry, &b, "new", UINT32_MAX * 2ull), 0);
        assert_int_equal(token_expiry_tick_callback(MOSQ_EVT_TICK, NULL, &p), MOSQ_ERR_SUCCESS);
        assert_int_equal(stub_kick_count, 1);
        assert_string_equal(stub_kicked, "old");
        /* Until its end is seen, it is not kicked again. */
        assert_int_equal(token_expiry_tick_callback(MOSQ_EVT_TICK, NULL, &p), MOSQ_ERR_SUCCESS);
        assert_int_equal(stub_kick_count, 1);
        token_expiry_deinit(&p.expiry);
        stub_connected[0] = stub_connected[1] = NULL;
}

static void test_will_properties(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL;

        assert_int_equal(will_properties("", &a), 0);
        assert_string_equal(a, "iothub-MessageType=Will");
        /* The device cannot pass its Will off as something else. */
        assert_int_equal(will_properties("x=1&iothub-MessageType=Other", &b), 0);
        assert_non_null(strstr(b, "x=1"));
        assert_non_null(strstr(b, "iothub-MessageType=Will"));
        assert_null(strstr(b, "Other"));
}

typedef struct Fixture {
        char dir[64];
        Plugin plugin;
} Fixture;

static int fixture_setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        char auth_path[128];

        assert_non_null(f);
        assert_int_equal(fake_runtime_dir(f->dir), 0);
        snprintf(auth_path, sizeof(auth_path), "%s/auth-cache.sock", f->dir);
        f->plugin = (Plugin){
                .broker_socket = (char *) SOCK,
                .presence = PRESENCE_NULL,
                .expiry = TOKEN_EXPIRY_NULL,
                .store_ratelimit = RATELIMIT_INIT(1000000, 100),
                .message_ratelimit = RATELIMIT_INIT(1000000, 100),
                .auth_ratelimit = RATELIMIT_INIT(1000000, 100),
        };
        /* Generous: a fake daemon under ASan on a loaded machine may take a while to answer. */
        assert_int_equal(backend_init(&f->plugin.backend, auth_path, 5000000), 0);
        assert_int_equal(fake_ingest_open(&f->plugin.ingest, f->dir, false), 0);
        *state = f;
        return 0;
}

static int fixture_teardown(void **state) {
        Fixture *f = *state;
        backend_deinit(&f->plugin.backend);
        presence_deinit(&f->plugin.presence);
        token_expiry_deinit(&f->plugin.expiry);
        ingest_append_deinit(&f->plugin.ingest);
        fake_dir_remove(f->dir);
        free(f);
        return 0;
}

static int will(Fixture *f, struct mosquitto *client, const char *topic, const char *payload) {
        struct mosquitto_evt_acl_check ed = {
                .client = client,
                .access = MOSQ_ACL_WRITE,
                .topic = topic,
                .payload = payload,
                .payloadlen = (uint32_t) strlen(payload),
                .qos = 1,
        };
        return acl_check_callback(MOSQ_EVT_ACL_CHECK, &ed, &f->plugin);
}

static void test_will_on_telemetry_is_stored(void **state) {
        Fixture *f = *state;
        struct mosquitto device = { .id = "d", .address = "192.0.2.1", .username = "hub/d/?api-version=1" };
        IngestRecord rec = INGEST_RECORD_NULL;

        /* The connection ended (MOSQ_EVT_DISCONNECT ran): this check is its Will, put in the ingest log. */
        assert_int_equal(will(f, &device, "devices/d/messages/events/a=1", "gone"), MOSQ_ERR_ACL_DENIED);
        assert_int_equal(fake_ingest_read(f->dir, &rec, 1), 1);
        assert_string_equal(rec.identity, "d");
        assert_string_equal(rec.properties, "a=1&iothub-MessageType=Will");
        assert_int_equal(rec.payload_len, 4);
        assert_memory_equal(rec.payload, "gone", 4);
        ingest_record_deinit(&rec);
}

static void test_will_elsewhere_reaches_nobody(void **state) {
        Fixture *f = *state;
        struct mosquitto device = { .id = "d", .address = "192.0.2.1", .username = "hub/d/?api-version=1" };
        IngestRecord rec = INGEST_RECORD_NULL;

        static const char *const topics[] = {
                "$iothub/methods/invoke/res/200/?$rid=1",
                "$iothub/methods/res/200/?$rid=1",
                "$iothub/twin/PATCH/properties/reported/?$rid=1",
                "devices/e/messages/events/",
                "devices/d/messages/devicebound/",
                "$edgehub/deliver",
        };
        for (size_t i = 0; i < ELEMENTSOF(topics); i++)
                assert_int_equal(will(f, &device, topics[i], "x"), MOSQ_ERR_ACL_DENIED);
        /* Taken over by a new connection: the old one's Will is still only a Will. */
        int newer = 0;
        assert_int_equal(token_expiry_add(&f->plugin.expiry, &device, "d", 0), 0);
        assert_int_equal(token_expiry_add(&f->plugin.expiry, &newer, "d", 0), 0);
        assert_int_equal(will(f, &device, "$iothub/methods/res/200/?$rid=1", "x"), MOSQ_ERR_ACL_DENIED);
        /* Nothing reached the ingest log. */
        assert_int_equal(fake_ingest_read(f->dir, &rec, 1), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_many_connections),
                cmocka_unit_test(test_due_is_bounded),
                cmocka_unit_test(test_password),
                cmocka_unit_test(test_tick_kicks_expired),
                cmocka_unit_test(test_will_properties),
                cmocka_unit_test_setup_teardown(test_will_on_telemetry_is_stored, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_will_elsewhere_reaches_nobody, fixture_setup, fixture_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
