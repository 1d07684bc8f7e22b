/* Tests of the device scope on disk (real RocksDB in a temporary folder) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth-cache/scope-store.h"
#include "proto/runtime/log.h"
#include "proto/runtime/test-daemon.h"
#include "proto/util/cleanup.h"

static void add(Scope *s, const char *device, const char *module, bool enabled, bool edge,
                const char *primary, const char *secondary) {
        _cleanup_(identity_freep) Identity *id = NULL;

        assert_int_equal(identity_new(&id, device, module), 0);
        id->enabled = enabled;
        id->edge = edge;
        id->primary_key = primary ? strdup(primary) : NULL;
        id->secondary_key = secondary ? strdup(secondary) : NULL;
        assert_int_equal(scope_add(s, &id), 0);
        assert_null(id);
}

static void assert_same_identity(const Identity *a, const Identity *b) {
        assert_non_null(a);
        assert_non_null(b);
        assert_string_equal(a->name, b->name);
        assert_string_equal(a->device_id, b->device_id);
        if (a->module_id)
                assert_string_equal(a->module_id, b->module_id);
        else
                assert_null(b->module_id);
        assert_true(identity_equal(a, b));
}

static void test_record_round_trip(void **state) {
        _cleanup_(scope_freep) Scope *s = NULL;

        assert_int_equal(scope_new(&s), 0);
        add(s, "d1", NULL, true, false, "cHJp", "c2Vj");
        add(s, "edge1", NULL, false, true, "ZQ==", NULL);
        add(s, "edge1", "$edgeHub", true, false, NULL, "aA==");
        for (size_t i = 0; i < s->n_items; i++) {
                _cleanup_(identity_freep) Identity *back = NULL;
                _cleanup_free_ uint8_t *buf = NULL;
                size_t len;
                const Identity *id = s->items[i];

                assert_int_equal(scope_record_encode(id, &buf, &len), 0);
                assert_int_equal(scope_record_decode(id->name, strlen(id->name), buf, len, &back), 0);
                assert_same_identity(id, back);

                /* Any truncation is detected. */
                for (size_t n = 0; n < len; n++) {
                        Identity *bad = NULL;
                        assert_int_equal(scope_record_decode(id->name, strlen(id->name), buf, n, &bad), -EUCLEAN);
                        assert_null(bad);
                }
        }
}

static void test_record_rejects_garbage(void **state) {
        Identity *id = NULL;
        static const uint8_t wrong_version[] = { 9, 1, 0, 1, 'k', 0, 0 };
        static const uint8_t unknown_flag[] = { 1, 0x81, 0, 1, 'k', 0, 0 };
        static const uint8_t module_flag_on_device[] = { 1, 0x05, 0, 1, 'k', 0, 0 };
        static const uint8_t no_keys[] = { 1, 1, 0, 0, 0, 0 };
        static const uint8_t trailing[] = { 1, 1, 0, 1, 'k', 0, 0, 7 };
        static const uint8_t good[] = { 1, 1, 0, 1, 'k', 0, 0 };

        assert_int_equal(scope_record_decode("d", 1, wrong_version, sizeof(wrong_version), &id), -EUCLEAN);
        assert_int_equal(scope_record_decode("d", 1, unknown_flag, sizeof(unknown_flag), &id), -EUCLEAN);
        assert_int_equal(scope_record_decode("d", 1, module_flag_on_device, sizeof(module_flag_on_device), &id), -EUCLEAN);
        assert_int_equal(scope_record_decode("d", 1, no_keys, sizeof(no_keys), &id), -EUCLEAN);
        assert_int_equal(scope_record_decode("d", 1, trailing, sizeof(trailing), &id), -EUCLEAN);
        assert_int_equal(scope_record_decode("a/b/c", 5, good, sizeof(good), &id), -EUCLEAN);
        assert_int_equal(scope_record_decode("", 0, good, sizeof(good), &id), -EUCLEAN);
        assert_int_equal(scope_record_decode("d\0x", 3, good, sizeof(good), &id), -EUCLEAN);
        assert_null(id);
        assert_int_equal(scope_record_decode("d", 1, good, sizeof(good), &id), 0);
        identity_free(id);
}

static void test_apply_and_reload(void **state) {
        const char *dir = *state;
        _cleanup_(scope_freep) Scope *first = NULL, *second = NULL, *loaded = NULL;
        uint64_t last_sync = 0;
        Kv *kv;

        /* An empty store: no identities, never synced. */
        kv = test_kv_open(dir);
        assert_int_equal(scope_store_load(kv, &loaded, &last_sync), 0);
        assert_int_equal(loaded->n_items, 0);
        assert_int_equal(last_sync, 0);
        loaded = scope_free(loaded);

        assert_int_equal(scope_new(&first), 0);
        add(first, "edge1", NULL, true, true, "ZQ==", "ZTI=");
        add(first, "edge1", "$edgeHub", true, false, "aA==", "aDI=");
        add(first, "d1", NULL, true, false, "ZDE=", "ZDEy");
        add(first, "d2", NULL, true, false, "ZDI=", NULL);
        add(first, "d2", "m", true, false, "bQ==", NULL);
        assert_int_equal(scope_finalize(first, "edge1"), 0);
        assert_int_equal(scope_store_apply(kv, NULL, first, 1000), 0);
        kv_close(kv);

        kv = test_kv_open(dir);
        assert_int_equal(scope_store_load(kv, &loaded, &last_sync), 0);
        assert_int_equal(last_sync, 1000);
        assert_int_equal(loaded->n_items, first->n_items);
        for (size_t i = 0; i < first->n_items; i++)
                assert_same_identity(first->items[i], scope_find(loaded, first->items[i]->name));
        loaded = scope_free(loaded);

        /*
         * d2 and its module leave, d1 is disabled with new keys, d3 arrives; the
         * cloud stops listing the edge device, its module stays (and must
         * survive the reload).
         */
        assert_int_equal(scope_new(&second), 0);
        add(second, "edge1", "$edgeHub", true, false, "aA==", "aDI=");
        add(second, "d1", NULL, false, false, "bmV3", NULL);
        add(second, "d3", NULL, true, false, "ZDM=", "ZDMy");
        assert_int_equal(scope_finalize(second, "edge1"), 0);
        assert_int_equal(scope_store_apply(kv, first, second, 2000), 0);
        kv_close(kv);

        kv = test_kv_open(dir);
        assert_int_equal(scope_store_load(kv, &loaded, &last_sync), 0);
        assert_int_equal(last_sync, 2000);
        assert_int_equal(loaded->n_items, 3);
        assert_null(scope_find(loaded, "edge1"));
        assert_non_null(scope_find(loaded, "edge1/$edgeHub"));
        assert_null(scope_find(loaded, "d2"));
        assert_null(scope_find(loaded, "d2/m"));
        for (size_t i = 0; i < second->n_items; i++)
                assert_same_identity(second->items[i], scope_find(loaded, second->items[i]->name));
        assert_false(scope_find(loaded, "d1")->enabled);
        loaded = scope_free(loaded);

        /* An empty scope from the cloud empties the store too. */
        _cleanup_(scope_freep) Scope *empty = NULL;
        assert_int_equal(scope_new(&empty), 0);
        assert_int_equal(scope_store_apply(kv, second, empty, 3000), 0);
        kv_close(kv);
        kv = test_kv_open(dir);
        assert_int_equal(scope_store_load(kv, &loaded, &last_sync), 0);
        assert_int_equal(loaded->n_items, 0);
        assert_int_equal(last_sync, 3000);
        kv_close(kv);
}

static void test_corrupt_record_refused(void **state) {
        const char *dir = *state;
        _cleanup_(scope_freep) Scope *loaded = NULL;
        uint64_t last_sync = 0;
        Kv *kv = test_kv_open(dir);

        assert_int_equal(kv_put(kv, "i/d1", 4, "\x01\x01\x00", 3), 0);
        assert_int_equal(scope_store_load(kv, &loaded, &last_sync), -EUCLEAN);
        assert_null(loaded);
        kv_close(kv);
}

static void test_x509_record_round_trip(void **state) {
        static const char sha1[] = "0123456789abcdef0123456789abcdef01234567";
        static const uint8_t v1[] = { 1, 0x01, 0, 4, 'c', 'w', '=', '=', 0, 0 };
        _cleanup_(identity_freep) Identity *ss = NULL, *ca = NULL, *back = NULL, *old = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        size_t len;

        assert_int_equal(identity_new(&ss, "self", NULL), 0);
        ss->auth = IDENTITY_AUTH_SELF_SIGNED;
        ss->secondary_thumbprint = strdup(sha1);
        assert_int_equal(scope_record_encode(ss, &buf, &len), 0);
        assert_int_equal(scope_record_decode("self", 4, buf, len, &back), 0);
        assert_same_identity(ss, back);
        assert_null(back->primary_thumbprint);
        assert_string_equal(back->secondary_thumbprint, sha1);
        back = identity_free(back);

        /* A thumbprint changed on disk into something we never write is corruption. */
        buf[len - 3] = 'X';
        assert_int_equal(scope_record_decode("self", 4, buf, len, &back), -EUCLEAN);
        buf = (free(buf), NULL);

        /* selfSigned without a thumbprint cannot authenticate: never stored, never loaded. */
        ss->secondary_thumbprint = (free(ss->secondary_thumbprint), NULL);
        assert_int_equal(scope_record_encode(ss, &buf, &len), 0);
        assert_int_equal(scope_record_decode("self", 4, buf, len, &back), -EUCLEAN);
        buf = (free(buf), NULL);

        assert_int_equal(identity_new(&ca, "ca", NULL), 0);
        ca->auth = IDENTITY_AUTH_CA;
        ca->enabled = false;
        assert_int_equal(scope_record_encode(ca, &buf, &len), 0);
        assert_int_equal(scope_record_decode("ca", 2, buf, len, &back), 0);
        assert_same_identity(ca, back);
        assert_int_equal(back->auth, IDENTITY_AUTH_CA);

        /* Records written before X.509 (version 1) still load, as SAS. */
        assert_int_equal(scope_record_decode("d1", 2, v1, sizeof(v1), &old), 0);
        assert_int_equal(old->auth, IDENTITY_AUTH_SAS);
        assert_string_equal(identity_key(old), "cw==");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_record_round_trip),
                cmocka_unit_test(test_record_rejects_garbage),
                cmocka_unit_test(test_x509_record_round_trip),
                cmocka_unit_test_setup_teardown(test_apply_and_reload, test_scratch_setup, test_scratch_teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_record_refused, test_scratch_setup, test_scratch_teardown),
        };

        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
