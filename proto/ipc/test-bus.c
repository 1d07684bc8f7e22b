/* Unit tests: the bus messages every daemon parses the same way */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/ipc/bus.h"

static int presence(const char *client, const char *payload, size_t len, bool *connected) {
        BusMessage m = { .topic = BUS_TOPIC_PRESENCE, .payload = payload, .len = len, .client = client };
        return bus_presence_parse(&m, connected);
}

static void test_presence_parse(void **state) {
        bool c = false;

        assert_int_equal(presence("dev", "connected", 9, &c), 0);
        assert_true(c);
        assert_int_equal(presence("dev/mod", "disconnected", 12, &c), 0);
        assert_false(c);

        /* Nothing else: not a prefix, not longer, not empty, not without a client. */
        c = true;
        assert_int_equal(presence("dev", "connect", 7, &c), -EBADMSG);
        assert_int_equal(presence("dev", "connectedX", 10, &c), -EBADMSG);
        assert_int_equal(presence("dev", "connected\0", 10, &c), -EBADMSG);
        assert_int_equal(presence("dev", NULL, 0, &c), -EBADMSG);
        assert_int_equal(presence(NULL, "connected", 9, &c), -EBADMSG);
        assert_true(c); /* untouched on failure */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_presence_parse),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
