/* Unit tests: jittered backoff, its doubling state, and the token bucket */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "proto/util/backoff.h"

static void test_backoff_bounds(void **state) {
        static const uint64_t randoms[] = { 0, 1, 12345, UINT64_MAX / 3, UINT64_MAX };

        for (size_t k = 0; k < sizeof(randoms) / sizeof(randoms[0]); k++) {
                uint64_t r = randoms[k];
                /* The first retry comes quickly: 100-200 ms. */
                uint64_t d = backoff_delay_usec(0, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, r);
                assert_true(d >= 100000 && d <= 200000);
                d = backoff_delay_usec(3, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, r);
                assert_true(d >= 800000 && d <= 1600000);
                /* Capped, and no overflow for absurd attempt counts. */
                for (unsigned a = 8; a < 200; a += 37) {
                        d = backoff_delay_usec(a, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, r);
                        assert_true(d >= BACKOFF_CAP_USEC / 2 && d <= BACKOFF_CAP_USEC);
                }
        }
        /* Jitter actually spreads. */
        assert_int_not_equal(backoff_delay_usec(2, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, 0),
                             backoff_delay_usec(2, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, 77777));
        (void) backoff_random();
}

/* The shape the bus, the scope sync, the twin push and module restarts keep: one number that doubles. */
static void test_backoff_state(void **state) {
        uint64_t cur = 0, d;

        assert_int_equal(backoff_double(0, 1000, 8000), 1000);
        assert_int_equal(backoff_double(1000, 1000, 8000), 2000);
        assert_int_equal(backoff_double(4000, 1000, 8000), 8000);
        assert_int_equal(backoff_double(5000, 1000, 8000), 8000);
        assert_int_equal(backoff_double(8000, 1000, 8000), 8000);
        /* No overflow near the top. */
        assert_int_equal(backoff_double(UINT64_MAX - 1, 1, UINT64_MAX), UINT64_MAX);

        for (unsigned i = 0; i < 6; i++) {
                uint64_t before = cur ? cur : 1000;
                d = backoff_next(&cur, 1000, 8000);
                assert_true(d >= before / 2 && d <= before);
                assert_int_equal(cur, before >= 4000 ? 8000 : before * 2);
        }
        assert_int_equal(cur, 8000);

        assert_int_equal(backoff_jitter(1000, 0), 500);
        assert_int_equal(backoff_jitter(1000, 500), 1000);
        assert_int_equal(backoff_jitter(1000, 501), 500);
}

static void test_token_bucket(void **state) {
        TokenBucket b;
        uint64_t now = 1000000000;

        token_bucket_init(&b, 20, 20);
        /* A burst of 20, then one every 50 ms. */
        for (int i = 0; i < 20; i++)
                assert_true(token_bucket_take(&b, now));
        assert_false(token_bucket_take(&b, now));
        uint64_t wait = token_bucket_wait_usec(&b, now);
        assert_true(wait > 0 && wait <= 50000);
        assert_false(token_bucket_take(&b, now + wait - 1));
        assert_true(token_bucket_take(&b, now + wait));
        assert_false(token_bucket_take(&b, now + wait));

        /* Over 10 s of constant demand: about 20 per second plus the burst. */
        unsigned taken = 0;
        for (uint64_t t = now + wait; t < now + wait + 10000000; t += 1000)
                taken += token_bucket_take(&b, t);
        assert_true(taken >= 199 && taken <= 201);

        /* After a quiet spell the burst is back, but no more. */
        now += 60000000;
        taken = 0;
        while (token_bucket_take(&b, now))
                taken++;
        assert_int_equal(taken, 20);
        assert_int_equal(token_bucket_wait_usec(&b, now + 50000), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_backoff_bounds),
                cmocka_unit_test(test_backoff_state),
                cmocka_unit_test(test_token_bucket),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
