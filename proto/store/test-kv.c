/* Unit tests: the RocksDB wrapper, on a real RocksDB in a temporary folder */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/store/kv.h"
#include "proto/util/cleanup.h"

static char *make_dir(void) {
        char tmpl[] = "/tmp/edgehub-test-kv-XXXXXX";
        char *d = mkdtemp(tmpl);
        assert_non_null(d);
        return strdup(d);
}

static void remove_dir(const char *d) {
        char cmd[512];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
        assert_int_equal(system(cmd), 0);
}

static void test_put_get_delete_reopen(void **state) {
        _cleanup_free_ char *dir = make_dir();
        Kv *kv = NULL;
        void *v = NULL;
        size_t vlen;
        KvOptions o = { .sync_every_write = true };

        assert_int_equal(kv_open(dir, &o, &kv, NULL), 0);
        assert_int_equal(kv_put(kv, "a", 1, "one", 3), 0);
        assert_int_equal(kv_put(kv, "b", 1, "", 0), 0);
        assert_int_equal(kv_get(kv, "a", 1, &v, &vlen), 0);
        assert_int_equal(vlen, 3);
        assert_memory_equal(v, "one", 3);
        free(v);
        assert_int_equal(kv_get(kv, "b", 1, &v, &vlen), 0);
        assert_int_equal(vlen, 0);
        free(v);
        assert_int_equal(kv_get(kv, "c", 1, &v, &vlen), -ENOENT);
        assert_int_equal(kv_delete(kv, "b", 1), 0);
        kv_close(kv);

        /* What was written is there after reopening; what was deleted is not. */
        assert_int_equal(kv_open(dir, NULL, &kv, NULL), 0);
        assert_int_equal(kv_get(kv, "a", 1, &v, &vlen), 0);
        free(v);
        assert_int_equal(kv_get(kv, "b", 1, &v, &vlen), -ENOENT);
        kv_close(kv);
        remove_dir(dir);
}

static void test_batch_and_prefix_iteration(void **state) {
        _cleanup_free_ char *dir = make_dir();
        Kv *kv = NULL;
        KvBatch *b = NULL;
        KvIter *it = NULL;

        assert_int_equal(kv_open(dir, NULL, &kv, NULL), 0);
        assert_int_equal(kv_batch_new(&b), 0);
        kv_batch_put(b, "p/2", 3, "2", 1);
        kv_batch_put(b, "p/1", 3, "1", 1);
        kv_batch_put(b, "p/3", 3, "3", 1);
        kv_batch_put(b, "q/1", 3, "x", 1);
        kv_batch_put(b, "p\xff", 2, "y", 1);
        assert_int_equal(kv_batch_count(b), 5);
        assert_int_equal(kv_write(kv, b), 0);
        kv_batch_free(b);

        /* Only keys with the prefix, in byte order. */
        const char *want[] = { "p/1", "p/2", "p/3" };
        size_t n = 0;
        assert_int_equal(kv_iter_new(kv, "p/", 2, &it), 0);
        for (; kv_iter_valid(it); kv_iter_next(it)) {
                size_t klen;
                const char *k = kv_iter_key(it, &klen);
                assert_true(n < ELEMENTSOF(want));
                assert_int_equal(klen, 3);
                assert_memory_equal(k, want[n], 3);
                n++;
        }
        assert_int_equal(n, 3);
        kv_iter_free(it);

        /* Range delete in a batch. */
        assert_int_equal(kv_batch_new(&b), 0);
        kv_batch_delete_range(b, "p/1", 3, "p/3", 3);
        assert_int_equal(kv_write(kv, b), 0);
        kv_batch_free(b);
        n = 0;
        assert_int_equal(kv_iter_new(kv, "p/", 2, &it), 0);
        for (; kv_iter_valid(it); kv_iter_next(it))
                n++;
        kv_iter_free(it);
        assert_int_equal(n, 1);

        assert_int_equal(kv_sync_wal(kv), 0);
        assert_int_equal(kv_compact_range(kv, "p/", 2, "p0", 2), 0);
        kv_close(kv);
        remove_dir(dir);
}

static void test_open_errors(void **state) {
        Kv *kv = NULL;
        char *error = NULL;

        /* A folder that cannot be created names itself. */
        assert_true(kv_open("/proc/edgehub-no-such/x", NULL, &kv, &error) < 0);
        assert_non_null(error);
        free(error);
        error = NULL;

        /* A corrupt store is refused, not silently recreated. */
        _cleanup_free_ char *dir = make_dir();
        assert_int_equal(kv_open(dir, NULL, &kv, NULL), 0);
        assert_int_equal(kv_put(kv, "a", 1, "1", 1), 0);
        kv_close(kv);
        char path[512];
        snprintf(path, sizeof(path), "%s/CURRENT", dir);
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs("MANIFEST-999999\n", f);
        fclose(f);
        assert_true(kv_open(dir, NULL, &kv, &error) < 0);
        assert_non_null(error);
        free(error);
        remove_dir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_put_get_delete_reopen),
                cmocka_unit_test(test_batch_and_prefix_iteration),
                cmocka_unit_test(test_open_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
