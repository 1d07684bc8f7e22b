/* Unit tests of the Device: what keeps a link, its streams, its request queue without a link */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hub-store/device.h"
#include "proto/ipc/frame.h"

static void test_needs_link(void **state) {
        _cleanup_(device_freep) Device *d = NULL;
        StoreStream st = { .priority = 1, .messages = 0 };

        assert_int_equal(device_new(&d, "d/m"), 0);
        assert_string_equal(d->identity, "d/m");
        assert_false(device_needs_link(d));

        d->connected = true;
        assert_true(device_needs_link(d));
        d->connected = false;

        /* A stream counts once it holds something. */
        device_add_stream(d, &st);
        assert_ptr_equal(d->streams[1], &st);
        assert_false(device_needs_link(d));
        st.messages = 3;
        st.delivered = 5;
        assert_true(device_needs_link(d));
        assert_int_equal(device_queued(d), 3);
        assert_int_equal(device_delivered(d), 5);
        st.messages = 0;

        /* Out of range: ignored. */
        StoreStream bad = { .priority = STORE_PRIORITY_MAX + 1, .messages = 1 };
        device_add_stream(d, &bad);
        assert_int_equal(device_queued(d), 0);

        d->always_linked = true;
        assert_true(device_needs_link(d));
}

static void test_requests(void **state) {
        _cleanup_(device_freep) Device *d = NULL;

        assert_int_equal(device_new(&d, "d"), 0);
        assert_int_equal(device_queue_request(d, "$iothub/twin/GET/?$rid=1", "", 0), 0);
        assert_int_equal(device_queue_request(d, "$iothub/twin/GET/?$rid=2", "ab", 2), 0);
        assert_true(device_needs_link(d));

        /* No link: everything waits, in order. */
        device_flush_requests(d);
        assert_int_equal(d->n_requests, 2);
        assert_string_equal(d->requests[0].topic, "$iothub/twin/GET/?$rid=1");
        assert_int_equal(d->requests[1].len, 2);
        assert_memory_equal(d->requests[1].payload, "ab", 2);

        /* Not due yet; then both are. */
        uint64_t now = now_usec();
        assert_int_equal(device_expire_requests(d, now), 0);
        assert_int_equal(device_expire_requests(d, now + DEVICE_REQUEST_WAIT_USEC + 1), 2);
        assert_int_equal(d->n_requests, 0);
        assert_false(device_needs_link(d));

        /* Bounded. */
        for (unsigned i = 0; i < DEVICE_REQUESTS_MAX; i++)
                assert_int_equal(device_queue_request(d, "$iothub/x", "p", 1), 0);
        assert_int_equal(device_queue_request(d, "$iothub/x", "p", 1), -ENOBUFS);
        device_requests_free(d);
        assert_int_equal(d->n_requests, 0);
        assert_null(d->requests);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_needs_link),
                cmocka_unit_test(test_requests),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
