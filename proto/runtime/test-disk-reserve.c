/* Unit tests: the free-space floor shared by the stores */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include <cmocka.h>

#include "proto/runtime/disk-reserve.h"

static void test_floor(void **state) {
        struct statvfs v;

        assert_int_equal(statvfs("/tmp", &v), 0);
        uint64_t avail = (uint64_t) v.f_bavail * v.f_frsize;

        /* Asking for everything that is free leaves less than the reserve. */
        assert_int_equal(disk_reserve_check("/tmp", avail), -ENOSPC);
        assert_int_equal(disk_reserve_check("/tmp", UINT64_MAX / 2), -ENOSPC);
        /* A small write fits when the disk has room beyond the reserve (else it is refused too). */
        assert_int_equal(disk_reserve_check("/tmp", 1), avail > DISK_RESERVE_BYTES + 1 ? 0 : -ENOSPC);
        /* Cannot tell: the store's own error decides. */
        assert_int_equal(disk_reserve_check("/nonexistent/edgehub", UINT64_MAX / 2), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_floor),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
