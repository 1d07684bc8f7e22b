/* Tests of the daemon's core without sockets: applying scopes, kicks, requests */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>
#include <jansson.h>

#include "auth-cache/manager.h"
#include "auth-cache/scope-store.h"
#include "proto/iothub/iot-identity.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/runtime/test-daemon.h"
#include "proto/util/cleanup.h"

#define EDGEHUB_KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

typedef struct Fixture {
        char *dir;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        f->dir = test_scratch_new("auth-cache");
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        test_scratch_remove(f->dir);
        free(f);
        return 0;
}

static Manager *make_manager(Fixture *f) {
        /* hub.example, edge1 and EDGEHUB_KEY: the configuration every daemon's test uses. */
        _cleanup_(config_freep) Config *config = test_config_new(f->dir);
        _cleanup_free_ char *broker = NULL;
        Manager *m = NULL;

        assert_int_equal(manager_new(&m, &config), 0);
        assert_null(config);
        assert_int_equal(manager_open_store(m), 0);
        /* A broker that is not there: kicks stay pending, which is what we count. */
        assert_true(asprintf(&broker, "%s/run/broker.sock", f->dir) > 0);
        assert_int_equal(broker_link_new(&m->broker, m->event, broker), 0);
        return m;
}

static Scope *scope_of(const char *const *names, const bool *enabled, size_t n) {
        Scope *s = NULL;

        assert_int_equal(scope_new(&s), 0);
        for (size_t i = 0; i < n; i++) {
                _cleanup_(identity_freep) Identity *id = NULL;
                _cleanup_free_ char *device = NULL, *module = NULL;
                assert_int_equal(iot_identity_split(names[i], &device, &module), 0);
                assert_int_equal(identity_new(&id, device, module), 0);
                id->enabled = enabled[i];
                id->primary_key = strdup("a2V5");
                assert_int_equal(scope_add(s, &id), 0);
        }
        assert_true(scope_finalize(s, "edge1") >= 0);
        return s;
}

static void test_apply_kicks_and_persists(void **state) {
        Fixture *f = *state;
        Manager *m = make_manager(f);
        Scope *s;

        assert_int_equal(m->scope->n_items, 0);
        assert_int_equal(m->last_sync_ms, 0);

        /* First sync: nothing to kick. */
        static const char *const a[] = { "d1", "d2", "d2/m", "d3", "edge1/$edgeHub" };
        static const bool a_on[] = { true, true, true, false, true };
        s = scope_of(a, a_on, ELEMENTSOF(a));
        assert_int_equal(manager_apply_scope(m, &s, 1000), 0);
        assert_null(s);
        assert_int_equal(broker_link_pending(m->broker), 0);

        /* d1 disabled, d2 and its module removed, d3 (already disabled) removed: three kicks. */
        static const char *const b[] = { "d1", "edge1/$edgeHub" };
        static const bool b_on[] = { false, true };
        s = scope_of(b, b_on, ELEMENTSOF(b));
        assert_int_equal(manager_apply_scope(m, &s, 2000), 0);
        assert_int_equal(broker_link_pending(m->broker), 3);

        /* d1 comes back before the kick went out: no reason to kick it any more. */
        static const bool c_on[] = { true, true };
        s = scope_of(b, c_on, ELEMENTSOF(b));
        assert_int_equal(manager_apply_scope(m, &s, 3000), 0);
        assert_int_equal(broker_link_pending(m->broker), 2);

        /* d1's primary key is regenerated: its connections made with the old key go. */
        s = scope_of(b, c_on, ELEMENTSOF(b));
        Identity *d1 = (Identity *) scope_find(s, "d1");
        free(d1->primary_key);
        assert_non_null(d1->primary_key = strdup("bmV3"));
        assert_int_equal(manager_apply_scope(m, &s, 3000), 0);
        assert_int_equal(broker_link_pending(m->broker), 3);
        manager_free(m);

        /* A restart serves what was applied last, without any sync. */
        m = make_manager(f);
        assert_int_equal(m->last_sync_ms, 3000);
        assert_int_equal(m->scope->n_items, 2);
        assert_true(scope_find(m->scope, "d1")->enabled);
        assert_string_equal(scope_find(m->scope, "d1")->primary_key, "bmV3");
        assert_null(scope_find(m->scope, "d2"));
        manager_free(m);
}

static Scope *x509_scope(const char *primary, const char *secondary) {
        _cleanup_(identity_freep) Identity *id = NULL;
        Scope *s = NULL;

        assert_int_equal(scope_new(&s), 0);
        assert_int_equal(identity_new(&id, "x1", NULL), 0);
        id->auth = IDENTITY_AUTH_SELF_SIGNED;
        id->primary_thumbprint = primary ? strdup(primary) : NULL;
        id->secondary_thumbprint = secondary ? strdup(secondary) : NULL;
        assert_int_equal(scope_add(s, &id), 0);
        assert_true(scope_finalize(s, "edge1") >= 0);
        return s;
}

/* A sync that takes a thumbprint away closes the identity's connection; one that adds one does not. */
static void test_thumbprint_replaced_kicks(void **state) {
        static const char t1[] = "0123456789abcdef0123456789abcdef01234567",
                          t2[] = "1123456789abcdef0123456789abcdef01234567";
        Fixture *f = *state;
        Manager *m = make_manager(f);
        Scope *s;

        s = x509_scope(t1, NULL);
        assert_int_equal(manager_apply_scope(m, &s, 1000), 0);
        s = x509_scope(t1, t2);
        assert_int_equal(manager_apply_scope(m, &s, 2000), 0);
        assert_int_equal(broker_link_pending(m->broker), 0);
        s = x509_scope(t2, NULL);
        assert_int_equal(manager_apply_scope(m, &s, 3000), 0);
        assert_int_equal(broker_link_pending(m->broker), 1);
        manager_free(m);

        /* Persisted: the replaced thumbprint stays refused after a restart. */
        m = make_manager(f);
        assert_int_equal(scope_find(m->scope, "x1")->auth, IDENTITY_AUTH_SELF_SIGNED);
        assert_string_equal(scope_find(m->scope, "x1")->primary_thumbprint, t2);
        assert_null(scope_find(m->scope, "x1")->secondary_thumbprint);
        manager_free(m);
}

/* Runs one request through the socket handler and returns the parsed reply (body owned by *buf). */
static void call(Manager *m, FrameBuilder *req, Frame *reply, FrameBuilder *out) {
        test_handle(manager_handle_request, m, req, out, reply);
}

static uint32_t reply_status(const Frame *reply) {
        uint32_t status = 999;
        assert_int_equal(frame_get_u32(reply, WIRE_STATUS, &status), 0);
        return status;
}

static void test_key_requests(void **state) {
        Fixture *f = *state;
        Manager *m = make_manager(f);
        static const char *const names[] = { "d1", "d2" };
        static const bool on[] = { true, false };
        Scope *s = scope_of(names, on, ELEMENTSOF(names));
        static const struct {
                const char *identity;
                uint32_t status;
                const char *key;
        } rows[] = {
                { "edge1/$edgeHub", 0, EDGEHUB_KEY }, /* from the config, not synced */
                { "d1", 0, "a2V5" },
                { "d2", EACCES, NULL },
                { "d9", ENOENT, NULL },
                { "other/$edgeHub", ENOENT, NULL },
        };

        assert_int_equal(manager_apply_scope(m, &s, 1), 0);
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                FrameBuilder req = FRAME_BUILDER_NULL, out = FRAME_BUILDER_NULL;
                _cleanup_free_ char *key = NULL;
                Frame reply;

                frame_builder_init(&req, WIRE_KEY_REQUEST);
                frame_builder_add_string(&req, WIRE_IDENTITY, rows[i].identity);
                call(m, &req, &reply, &out);
                assert_int_equal(reply.type, WIRE_KEY_REPLY);
                assert_int_equal(reply_status(&reply), rows[i].status);
                if (rows[i].key) {
                        assert_int_equal(frame_get_string(&reply, WIRE_KEY, &key), 0);
                        assert_string_equal(key, rows[i].key);
                } else
                        assert_null(frame_get(&reply, WIRE_KEY));
                frame_builder_deinit(&req);
                frame_builder_deinit(&out);

                /* The identity query: the same verdict, and never the key. */
                frame_builder_init(&req, WIRE_IDENTITY_REQUEST);
                frame_builder_add_string(&req, WIRE_IDENTITY, rows[i].identity);
                call(m, &req, &reply, &out);
                assert_int_equal(reply.type, WIRE_IDENTITY_REPLY);
                assert_int_equal(reply_status(&reply), rows[i].status);
                assert_null(frame_get(&reply, WIRE_KEY));
                frame_builder_deinit(&req);
                frame_builder_deinit(&out);
        }
        manager_free(m);
}

/* An X.509 child has no key: its link signs as our $edgeHub. */
static void test_x509_key_request(void **state) {
        Fixture *f = *state;
        Manager *m = make_manager(f);
        Scope *s = x509_scope("0123456789abcdef0123456789abcdef01234567", NULL);
        FrameBuilder req = FRAME_BUILDER_NULL, out = FRAME_BUILDER_NULL;
        _cleanup_free_ char *signer = NULL;
        Frame reply;

        assert_int_equal(manager_apply_scope(m, &s, 1), 0);
        frame_builder_init(&req, WIRE_KEY_REQUEST);
        frame_builder_add_string(&req, WIRE_IDENTITY, "x1");
        call(m, &req, &reply, &out);
        assert_int_equal(reply_status(&reply), 0);
        assert_null(frame_get(&reply, WIRE_KEY));
        assert_int_equal(frame_get_string(&reply, WIRE_IDENTITY, &signer), 0);
        assert_string_equal(signer, "edge1/$edgeHub");
        frame_builder_deinit(&req);
        frame_builder_deinit(&out);

        /* It exists, as far as the identity query goes: enabled and in the scope. */
        frame_builder_init(&req, WIRE_IDENTITY_REQUEST);
        frame_builder_add_string(&req, WIRE_IDENTITY, "x1");
        call(m, &req, &reply, &out);
        assert_int_equal(reply.type, WIRE_IDENTITY_REPLY);
        assert_int_equal(reply_status(&reply), 0);
        assert_null(frame_get(&reply, WIRE_IDENTITY));
        frame_builder_deinit(&req);
        frame_builder_deinit(&out);
        manager_free(m);
}

static json_t *control(Manager *m, const char *command, uint32_t expect_status) {
        FrameBuilder req = FRAME_BUILDER_NULL, out = FRAME_BUILDER_NULL;
        _cleanup_free_ char *text = NULL;
        json_t *j = NULL;
        Frame reply;

        frame_builder_init(&req, WIRE_CONTROL_REQUEST);
        frame_builder_add_string(&req, WIRE_COMMAND, command);
        call(m, &req, &reply, &out);
        assert_int_equal(reply.type, WIRE_CONTROL_REPLY);
        assert_int_equal(reply_status(&reply), expect_status);
        if (expect_status == 0) {
                assert_int_equal(frame_get_string(&reply, WIRE_JSON, &text), 0);
                j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
                assert_non_null(j);
        } else
                assert_non_null(frame_get(&reply, WIRE_ERROR));
        frame_builder_deinit(&req);
        frame_builder_deinit(&out);
        return j;
}

static void test_control(void **state) {
        Fixture *f = *state;
        Manager *m = make_manager(f);
        json_auto_t *status = NULL, *status2 = NULL, *devices = NULL;
        json_t *last_sync = NULL, *module = NULL;
        int synced = -1, edge = -1;
        json_int_t n = -1;
        const char *identity = NULL, *st = NULL;

        status = control(m, "status", 0);
        assert_int_equal(json_unpack(status, "{s:b, s:o, s:I}", "synced", &synced, "last_sync_ms", &last_sync,
                                     "identities", &n), 0);
        assert_false(synced);
        assert_true(json_is_null(last_sync));
        assert_int_equal(n, 0);

        static const char *const names[] = { "d1", "d1/m" };
        static const bool on[] = { false, true };
        Scope *s = scope_of(names, on, ELEMENTSOF(names));
        assert_int_equal(manager_apply_scope(m, &s, 1234), 0);

        status2 = control(m, "status", 0);
        assert_int_equal(json_unpack(status2, "{s:b, s:o, s:I}", "synced", &synced, "last_sync_ms", &last_sync,
                                     "identities", &n), 0);
        assert_true(synced);
        assert_int_equal(json_integer_value(last_sync), 1234);
        assert_int_equal(n, 2);

        devices = control(m, "devices", 0);
        json_t *list = json_object_get(devices, "identities");
        assert_int_equal(json_array_size(list), 2);
        assert_int_equal(json_unpack(json_array_get(list, 1), "{s:s, s:o, s:s, s:b}", "identity", &identity,
                                     "module_id", &module, "status", &st, "edge", &edge), 0);
        assert_string_equal(identity, "d1/m");
        assert_string_equal(json_string_value(module), "m");
        assert_string_equal(st, "disabled"); /* follows its device */
        assert_false(edge);

        assert_null(control(m, "reboot", EINVAL));
        manager_free(m);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_apply_kicks_and_persists, setup, teardown),
                cmocka_unit_test_setup_teardown(test_thumbprint_replaced_kicks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_x509_key_request, setup, teardown),
                cmocka_unit_test_setup_teardown(test_key_requests, setup, teardown),
                cmocka_unit_test_setup_teardown(test_control, setup, teardown),
        };
        test_block_daemon_signals();
        log_set_max_level(getenv("TEST_DEBUG") ? LOG_DEBUG : LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
