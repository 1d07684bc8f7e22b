/* Unit tests: message-store key codec */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hub-store/store-key.h"

static int key_cmp(const StoreKey *a, const StoreKey *b) {
        int c = memcmp(a->buf, b->buf, a->len < b->len ? a->len : b->len);
        return c != 0 ? c : (a->len > b->len) - (a->len < b->len);
}

static void test_roundtrip(void **state) {
        StoreKey k;
        StoreKeyParts p;

        assert_int_equal(store_key_format(&k, STORE_ENDPOINT_UPSTREAM, 0, "dev-1/mod", 0x0102030405060708ull), 0);
        assert_int_equal(k.len, 1 + 9 + 1 + 1 + 9 + 1 + 8);
        assert_int_equal(store_key_parse(k.buf, k.len, &p), 0);
        assert_int_equal(p.endpoint_len, 9);
        assert_memory_equal(p.endpoint, "$upstream", 9);
        assert_int_equal(p.priority, 0);
        assert_int_equal(p.identity_len, 9);
        assert_memory_equal(p.identity, "dev-1/mod", 9);
        assert_int_equal(p.seq, 0x0102030405060708ull);
        assert_int_equal(p.prefix_len, k.len - 8);

        StoreKey prefix;
        assert_int_equal(store_key_stream_prefix(&prefix, STORE_ENDPOINT_UPSTREAM, 0, "dev-1/mod"), 0);
        assert_int_equal(prefix.len, p.prefix_len);
        assert_memory_equal(prefix.buf, k.buf, prefix.len);

        StoreKey k2;
        store_key_from_prefix(&k2, prefix.buf, prefix.len, 0x0102030405060708ull);
        assert_int_equal(key_cmp(&k, &k2), 0);

        assert_int_equal(store_key_format(&k, "module-endpoint", 9, "d", UINT64_MAX), 0);
        assert_int_equal(store_key_parse(k.buf, k.len, &p), 0);
        assert_int_equal(p.priority, 9);
        assert_int_equal(p.seq, UINT64_MAX);
}

/* Byte order is delivery order: seq ascending within a stream. */
static void test_seq_order(void **state) {
        static const uint64_t seqs[] = { 0, 1, 255, 256, 65535, 65536, 1ull << 32, UINT64_MAX - 1, UINT64_MAX };
        StoreKey prev, cur;

        assert_int_equal(store_key_format(&prev, STORE_ENDPOINT_UPSTREAM, 0, "d", seqs[0]), 0);
        for (size_t i = 1; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
                assert_int_equal(store_key_format(&cur, STORE_ENDPOINT_UPSTREAM, 0, "d", seqs[i]), 0);
                assert_true(key_cmp(&prev, &cur) < 0);
                prev = cur;
        }
}

/* "d1" must not be a prefix of "d1/m" or "d10": a stream scan stays in its stream. */
static void test_streams_disjoint(void **state) {
        StoreKey p1, k;

        assert_int_equal(store_key_stream_prefix(&p1, STORE_ENDPOINT_UPSTREAM, 0, "d1"), 0);
        static const char *const others[] = { "d1/m", "d10", "d1-" };
        for (size_t i = 0; i < 3; i++) {
                assert_int_equal(store_key_format(&k, STORE_ENDPOINT_UPSTREAM, 0, others[i], 7), 0);
                assert_false(k.len >= p1.len && memcmp(k.buf, p1.buf, p1.len) == 0);
        }
        /* Priorities and endpoints are separate streams too, priority 0 first. */
        StoreKey a, b;
        assert_int_equal(store_key_format(&a, STORE_ENDPOINT_UPSTREAM, 0, "d1", UINT64_MAX), 0);
        assert_int_equal(store_key_format(&b, STORE_ENDPOINT_UPSTREAM, 1, "d1", 0), 0);
        assert_true(key_cmp(&a, &b) < 0);
}

static void test_bad_names(void **state) {
        StoreKey k;
        char long_id[STORE_IDENTITY_MAX + 2];

        memset(long_id, 'a', sizeof(long_id) - 1);
        long_id[sizeof(long_id) - 1] = 0;
        assert_int_equal(store_key_stream_prefix(&k, "", 0, "d"), -EINVAL);
        assert_int_equal(store_key_stream_prefix(&k, STORE_ENDPOINT_UPSTREAM, 0, ""), -EINVAL);
        assert_int_equal(store_key_stream_prefix(&k, STORE_ENDPOINT_UPSTREAM, 10, "d"), -EINVAL);
        assert_int_equal(store_key_stream_prefix(&k, STORE_ENDPOINT_UPSTREAM, 0, long_id), -EINVAL);
        long_id[STORE_IDENTITY_MAX] = 0;
        assert_int_equal(store_key_stream_prefix(&k, STORE_ENDPOINT_UPSTREAM, 0, long_id), 0);
        assert_int_equal(store_key_stream_prefix(&k, NULL, 0, "d"), -EINVAL);
}

static void test_bad_keys(void **state) {
        static const struct {
                const char *bytes;
                size_t len;
        } bad[] = {
                { "", 0 },
                { "q", 1 },
                { "x$upstream\0\0d\0\0\0\0\0\0\0\0\1", 22 },  /* wrong tag */
                { "q\0\0d\0\0\0\0\0\0\0\0\1", 13 },            /* empty endpoint */
                { "q$upstream\0\0\0\0\0\0\0\0\0\0\1", 21 },   /* empty identity */
                { "q$upstream\0\x0a" "d\0\0\0\0\0\0\0\0\1", 22 }, /* priority 10 */
                { "q$upstream\0\0d\0\0\0\0\0\0\0\1", 21 },     /* seq too short */
                { "q$upstream\0\0dx\0\0\0\0\0\0\0\1", 22 },    /* no NUL before seq */
                { "q$upstream\0\0d\0x\0\0\0\0\0\0\0\0\1", 24 }, /* NUL inside identity */
        };
        StoreKeyParts p;

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(store_key_parse(bad[i].bytes, bad[i].len, &p), -EBADMSG);

        /* The shortest valid key parses. */
        assert_int_equal(store_key_parse("q$upstream\0\0d\0\0\0\0\0\0\0\0\1", 22, &p), 0);
        assert_int_equal(p.seq, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_seq_order),
                cmocka_unit_test(test_streams_disjoint),
                cmocka_unit_test(test_bad_names),
                cmocka_unit_test(test_bad_keys),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
