/* Tests of twins on disk (real RocksDB in a temporary folder) and the delivery diff */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/iothub/twin-patch.h"
#include "proto/runtime/test-daemon.h"
#include "proto/util/cleanup.h"
#include "twin-sync/twin-store.h"
#include "twin-sync/twin.h"

static json_t *J(const char *s) {
        json_error_t e;
        json_t *j = json_loads(s, 0, &e);
        assert_non_null(j);
        return j;
}

/* a equals the JSON text s (the parsed copy is freed). */
static bool json_equal_text(const json_t *a, const char *s) {
        json_t *b = J(s);
        bool equal = json_equal(a, b);
        json_decref(b);
        return equal;
}

typedef struct Loaded {
        Twin *twins[8];
        size_t n;
} Loaded;

static int collect(Twin **t, void *userdata) {
        Loaded *l = userdata;
        assert_true(l->n < 8);
        l->twins[l->n++] = *t;
        *t = NULL;
        return 0;
}

/* A patch queued with its record: persisted in order, nulls kept, removed only when acknowledged. */
static void queue_patch(Kv *kv, Twin *t, const char *patch) {
        json_auto_t *p = J(patch);
        json_auto_t *reported = NULL;
        assert_int_equal(twin_check_reported(t, p, &reported), 0);
        json_decref(t->reported);
        t->reported = TAKE_PTR(reported);
        t->reported_version++;
        t->next_seq++;
        assert_int_equal(twin_store_save(kv, t, patch, strlen(patch)), 0);
        t->n_pending++;
}

static void test_tail_replace_and_bytes(void **state) {
        const char *dir = *state;
        Loaded l = {};
        uint64_t seq;
        void *patch;
        size_t len;

        Kv *kv = test_kv_open(dir);
        _cleanup_(twin_freep) Twin *a = NULL;
        assert_int_equal(twin_new(&a, "a"), 0);
        assert_int_equal(twin_store_tail(kv, a, &seq, &patch, &len), -ENOENT);
        queue_patch(kv, a, "{\"x\":1}");
        queue_patch(kv, a, "{\"y\":2}");
        assert_int_equal(twin_store_tail(kv, a, &seq, &patch, &len), 0);
        assert_int_equal(seq, 2);
        assert_memory_equal(patch, "{\"y\":2}", len);
        free(patch);

        /* A merge replaces the newest entry in place; the oldest stays as it was. */
        const char *merged = "{\"y\":2,\"z\":null}";
        assert_int_equal(twin_store_replace(kv, a, 2, merged, strlen(merged)), 0);
        assert_int_equal(twin_store_replace(kv, a, a->next_seq, merged, strlen(merged)), -EINVAL);
        assert_int_equal(twin_store_head(kv, a, &seq, &patch, &len), 0);
        assert_int_equal(seq, 1);
        free(patch);
        assert_int_equal(twin_store_tail(kv, a, &seq, &patch, &len), 0);
        assert_int_equal(seq, 2);
        assert_int_equal(len, strlen(merged));
        free(patch);
        kv_close(kv);

        /* A restart counts what waits, in entries and bytes. */
        kv = test_kv_open(dir);
        assert_int_equal(twin_store_load(kv, collect, &l), 0);
        assert_int_equal(l.n, 1);
        assert_int_equal(l.twins[0]->n_pending, 2);
        assert_int_equal(l.twins[0]->pending_bytes, strlen("{\"x\":1}") + strlen(merged));
        twin_free(l.twins[0]);
        kv_close(kv);
}

static void test_record_decode(void **state) {
        _cleanup_(twin_freep) Twin *t = NULL;
        static const char *const bad[] = {
                "", "[]", "{}", "{\"desired\":{},\"dv\":0,\"reported\":{},\"rv\":0,\"seen\":{},\"sv\":0,\"seq\":0}",
                "{\"desired\":[],\"dv\":0,\"reported\":{},\"rv\":0,\"seen\":{},\"sv\":0,\"seq\":1}",
                "{\"desired\":{},\"dv\":-1,\"reported\":{},\"rv\":0,\"seen\":{},\"sv\":0,\"seq\":1}",
                "{\"desired\":{},\"dv\":0,\"reported\":{},\"rv\":0,\"seen\":{},\"sv\":0,\"seq\":1,\"x\":1}",
        };
        const char *good = "{\"desired\":{\"a\":1},\"dv\":3,\"reported\":{},\"rv\":2,\"seen\":{},\"sv\":1,\"seq\":5}";

        assert_int_equal(twin_new(&t, "d"), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(twin_store_record_decode(t, bad[i], strlen(bad[i])), -EUCLEAN);
        assert_int_equal(twin_store_record_decode(t, good, strlen(good)), 0);
        assert_int_equal(t->desired_version, 3);
        assert_int_equal(t->next_seq, 5);
}

static void test_queue_survives_reopen(void **state) {
        const char *dir = *state;
        Loaded l = {};
        uint64_t seq;
        void *patch;
        size_t len;

        Kv *kv = test_kv_open(dir);
        _cleanup_(twin_freep) Twin *a = NULL, *am = NULL;
        assert_int_equal(twin_new(&a, "a"), 0);
        assert_int_equal(twin_new(&am, "a/m"), 0);
        queue_patch(kv, a, "{\"x\":1}");
        queue_patch(kv, a, "{\"x\":null,\"y\":{\"z\":2}}");
        queue_patch(kv, am, "{\"q\":true}");
        kv_close(kv);

        kv = test_kv_open(dir);
        assert_int_equal(twin_store_load(kv, collect, &l), 0);
        assert_int_equal(l.n, 2);
        Twin *la = strcmp(l.twins[0]->identity, "a") == 0 ? l.twins[0] : l.twins[1];
        Twin *lam = la == l.twins[0] ? l.twins[1] : l.twins[0];
        assert_string_equal(lam->identity, "a/m");
        /* "q/a\0" is not a prefix of "q/a/m\0": each twin sees only its own queue. */
        assert_int_equal(la->n_pending, 2);
        assert_int_equal(lam->n_pending, 1);
        assert_int_equal(la->reported_version, 2);
        assert_true(json_equal_text(la->reported, "{\"y\":{\"z\":2}}"));

        assert_int_equal(twin_store_head(kv, la, &seq, &patch, &len), 0);
        assert_int_equal(seq, 1);
        assert_memory_equal(patch, "{\"x\":1}", len);
        free(patch);
        assert_int_equal(twin_store_ack(kv, la, seq), 0);
        assert_int_equal(twin_store_head(kv, la, &seq, &patch, &len), 0);
        assert_int_equal(seq, 2);
        /* The null that deletes x reaches the cloud. */
        assert_memory_equal(patch, "{\"x\":null,\"y\":{\"z\":2}}", len);
        free(patch);
        json_auto_t *pending = twin_store_pending(kv, la);
        assert_int_equal(json_array_size(pending), 1);
        assert_int_equal(twin_store_ack(kv, la, 2), 0);
        assert_int_equal(twin_store_head(kv, la, &seq, &patch, &len), -ENOENT);
        assert_int_equal(twin_store_head(kv, lam, &seq, &patch, &len), 0);
        free(patch);

        for (size_t i = 0; i < l.n; i++)
                twin_free(l.twins[i]);
        kv_close(kv);
}

static void test_malformed_record(void **state) {
        const char *dir = *state;
        Loaded l = {};

        Kv *kv = test_kv_open(dir);
        assert_int_equal(kv_put(kv, "t/x", 3, "{\"desired\":1}", 13), 0);
        assert_int_equal(twin_store_load(kv, collect, &l), -EUCLEAN);
        kv_close(kv);
}

static void test_reported_size_limit(void **state) {
        _cleanup_(twin_freep) Twin *t = NULL;
        json_t *reported = NULL;
        char key[8], *big = malloc(5000);

        assert_non_null(big);
        assert_int_equal(twin_new(&t, "d"), 0);
        memset(big, 'x', 4000);
        big[4000] = '\0';
        /* Eight 4,000-character strings fit in 32 KiB, nine do not. */
        for (int i = 0; i < 9; i++) {
                snprintf(key, sizeof(key), "k%d", i);
                json_auto_t *p = json_pack("{s:s}", key, big);
                int r = twin_check_reported(t, p, &reported);
                if (i < 8) {
                        assert_int_equal(r, 0);
                        json_decref(t->reported);
                        t->reported = reported;
                } else
                        assert_int_equal(r, -EMSGSIZE);
        }
        free(big);
}

static void test_pending_desired(void **state) {
        _cleanup_(twin_freep) Twin *t = NULL;

        assert_int_equal(twin_new(&t, "d"), 0);
        assert_null(twin_pending_desired(t));

        /* The device saw {a:1, b:{c:1}} at version 3; the cloud moved on to version 6. */
        json_decref(t->seen);
        t->seen = J("{\"a\":1,\"b\":{\"c\":1,\"d\":2}}");
        t->seen_version = 3;
        json_decref(t->desired);
        t->desired = J("{\"b\":{\"c\":1,\"d\":5},\"e\":[1]}");
        t->desired_version = 6;
        json_auto_t *p = twin_pending_desired(t);
        assert_true(json_equal_text(p, "{\"a\":null,\"b\":{\"d\":5},\"e\":[1],\"$version\":6}"));

        /* Changes that cancelled out: nothing to send. */
        json_decref(t->seen);
        t->seen = json_deep_copy(t->desired);
        assert_null(twin_pending_desired(t));

        json_auto_t *view = twin_view(t);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(view, "desired"), "$version")), 6);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_tail_replace_and_bytes, test_scratch_setup, test_scratch_teardown),
                cmocka_unit_test(test_record_decode),
                cmocka_unit_test_setup_teardown(test_queue_survives_reopen, test_scratch_setup, test_scratch_teardown),
                cmocka_unit_test_setup_teardown(test_malformed_record, test_scratch_setup, test_scratch_teardown),
                cmocka_unit_test(test_reported_size_limit),
                cmocka_unit_test(test_pending_desired),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
