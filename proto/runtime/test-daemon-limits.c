/* Unit tests: the open-file limit a daemon raises for itself */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "proto/runtime/daemon.h"

static void test_raise_fd_limit(void **state) {
        struct rlimit rl, low;

        assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
        /* Start from a soft limit below the hard one, as systemd's 1024 is. */
        low = (struct rlimit) { .rlim_cur = rl.rlim_max > 256 ? 256 : rl.rlim_max, .rlim_max = rl.rlim_max };
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);

        uint64_t now = daemon_raise_fd_limit();
        assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
        assert_true(rl.rlim_cur == rl.rlim_max);
        assert_true(now == (rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t) rl.rlim_cur));
        /* Already raised: nothing changes. */
        assert_true(daemon_raise_fd_limit() == now);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_raise_fd_limit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
