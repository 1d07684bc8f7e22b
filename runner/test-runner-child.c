/* edgehub-run's restart policy and exit descriptions */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "proto/util/cleanup.h"
#include "runner/runner-child.h"

#define MS UINT64_C(1000)
#define S UINT64_C(1000000)

static void test_backoff(void **state) {
        static const uint64_t expected[] = { 100 * MS, 200 * MS, 400 * MS, 800 * MS, 1600 * MS, 3200 * MS,
                                             5 * S, 5 * S };
        uint64_t delay = 0;

        /* Crashing at once, again and again: doubling up to 5 s. */
        for (size_t i = 0; i < ELEMENTSOF(expected); i++)
                assert_int_equal(restart_backoff(&delay, 10 * MS), expected[i]);

        /* Just under 10 s of life is still a crash loop. */
        assert_int_equal(restart_backoff(&delay, 10 * S - 1), 5 * S);
        /* A process that ran 10 s starts over at 100 ms. */
        assert_int_equal(restart_backoff(&delay, 10 * S), 100 * MS);
        assert_int_equal(restart_backoff(&delay, 0), 200 * MS);
}

static void test_exit_description(void **state) {
        char b[EXIT_DESCRIPTION_MAX];

        assert_string_equal(exit_description(b, CLD_EXITED, 0), "exited with status 0");
        assert_string_equal(exit_description(b, CLD_EXITED, 1), "exited with status 1");
        assert_string_equal(exit_description(b, CLD_KILLED, SIGKILL), "exited with status 9 (killed by SIGKILL)");
        assert_string_equal(exit_description(b, CLD_KILLED, SIGTERM), "exited with status 15 (killed by SIGTERM)");
        assert_string_equal(exit_description(b, CLD_DUMPED, SIGSEGV),
                            "exited with status 11 (killed by SIGSEGV, core dumped)");
}

static void test_delay_description(void **state) {
        char b[DELAY_DESCRIPTION_MAX];

        assert_string_equal(delay_description(b, 100 * MS), "100ms");
        assert_string_equal(delay_description(b, 999 * MS), "999ms");
        assert_string_equal(delay_description(b, 1600 * MS), "1.6s");
        assert_string_equal(delay_description(b, 5 * S), "5s");
        assert_string_equal(delay_description(b, 10 * S), "10s");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_backoff),
                cmocka_unit_test(test_exit_description),
                cmocka_unit_test(test_delay_description),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
