/* Unit tests: stream cursors across sequence-number blocks, on a real RocksDB */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "hub-store/store-cursor.h"
#include "hub-store/test-util.h"

/* Block boundaries of every size, and the extremes. */
static const uint64_t seqs[] = {
        1, 2, 255, 256, 257, 511, 65535, 65536, 65537, 1ull << 24, (1ull << 32) - 1, 1ull << 32,
        (1ull << 56) - 1, 1ull << 56, (1ull << 56) + 1, UINT64_MAX - 1, UINT64_MAX,
};
#define N_SEQS (sizeof(seqs) / sizeof(seqs[0]))

typedef struct Fixture {
        char *dir;
        Kv *kv;
        StoreKey prefix;
} Fixture;

static void put(Fixture *f, const char *identity, uint64_t seq) {
        StoreKey k;
        assert_int_equal(store_key_format(&k, "$upstream", 0, identity, seq), 0);
        assert_int_equal(kv_put(f->kv, k.buf, k.len, "v", 1), 0);
}

static void del(Fixture *f, const char *identity, uint64_t seq) {
        StoreKey k;
        assert_int_equal(store_key_format(&k, "$upstream", 0, identity, seq), 0);
        assert_int_equal(kv_delete(f->kv, k.buf, k.len), 0);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        f->dir = test_mkdtemp();
        assert_non_null(f->dir);
        assert_int_equal(kv_open(f->dir, &(KvOptions) {}, &f->kv, NULL), 0);
        assert_int_equal(store_key_stream_prefix(&f->prefix, "$upstream", 0, "d"), 0);
        /* Neighbours on both sides, sharing sequence numbers: never seen through "d". */
        for (size_t i = 0; i < N_SEQS; i++) {
                put(f, "c", seqs[i]);
                put(f, "d", seqs[i]);
                put(f, "d0", seqs[i]);
                put(f, "d/m", seqs[i]);
        }
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        kv_close(f->kv);
        test_rmdir(f->dir);
        free(f->dir);
        free(f);
        return 0;
}

static void test_iterate_all(void **state) {
        Fixture *f = *state;
        StoreCursor c;
        size_t n = 0;

        store_cursor_init(&c, f->kv, &f->prefix, UINT64_MAX);
        assert_int_equal(store_cursor_seek(&c, 0), 0);
        for (; store_cursor_valid(&c); assert_int_equal(store_cursor_next(&c), 0)) {
                assert_true(n < N_SEQS);
                assert_int_equal(store_cursor_seq(&c), seqs[n]);
                n++;
        }
        assert_int_equal(n, N_SEQS);
        store_cursor_deinit(&c);
}

/* From any position: the first record at or after it. */
static void test_seek(void **state) {
        Fixture *f = *state;
        StoreCursor c;

        store_cursor_init(&c, f->kv, &f->prefix, UINT64_MAX);
        for (size_t i = 0; i < N_SEQS; i++) {
                assert_int_equal(store_cursor_seek(&c, seqs[i]), 0);
                assert_true(store_cursor_valid(&c));
                assert_int_equal(store_cursor_seq(&c), seqs[i]);
                if (seqs[i] < UINT64_MAX && (i + 1 == N_SEQS || seqs[i + 1] != seqs[i] + 1)) {
                        assert_int_equal(store_cursor_seek(&c, seqs[i] + 1), 0);
                        assert_true(store_cursor_valid(&c));
                        assert_int_equal(store_cursor_seq(&c), seqs[i + 1]);
                }
        }
        store_cursor_deinit(&c);

        /* Nothing past last. */
        store_cursor_init(&c, f->kv, &f->prefix, 65536);
        assert_int_equal(store_cursor_seek(&c, 65537), 0);
        assert_false(store_cursor_valid(&c));
        assert_int_equal(store_cursor_seek(&c, 300), 0);
        assert_int_equal(store_cursor_seq(&c), 511);
        assert_int_equal(store_cursor_next(&c), 0);
        assert_int_equal(store_cursor_seq(&c), 65535);
        assert_int_equal(store_cursor_next(&c), 0);
        assert_int_equal(store_cursor_seq(&c), 65536);
        assert_int_equal(store_cursor_next(&c), 0);
        assert_false(store_cursor_valid(&c));
        store_cursor_deinit(&c);
}

/* Deleted records are skipped, wherever they sit. */
static void test_deleted(void **state) {
        Fixture *f = *state;
        StoreCursor c;

        for (uint64_t s = 1000; s < 5000; s++)
                put(f, "d", s);
        for (uint64_t s = 1000; s < 4999; s++)
                del(f, "d", s);
        del(f, "d", 65536);

        store_cursor_init(&c, f->kv, &f->prefix, UINT64_MAX);
        assert_int_equal(store_cursor_seek(&c, 512), 0);
        assert_int_equal(store_cursor_seq(&c), 4999);
        assert_int_equal(store_cursor_next(&c), 0);
        assert_int_equal(store_cursor_seq(&c), 65535);
        assert_int_equal(store_cursor_next(&c), 0);
        assert_int_equal(store_cursor_seq(&c), 65537);
        store_cursor_deinit(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_iterate_all, setup, teardown),
                cmocka_unit_test_setup_teardown(test_seek, setup, teardown),
                cmocka_unit_test_setup_teardown(test_deleted, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
