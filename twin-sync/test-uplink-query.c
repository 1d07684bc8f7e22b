/* Tests of reading hub-store's status for the uplink state */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/util/cleanup.h"
#include "twin-sync/uplink-query.h"

typedef struct Case {
        const char *json;
        int want_r;
        UplinkKnown want;
} Case;

#define DOWN_SINCE ",\"offline_since_ms\":1796659813000"
#define NOT_DOWN ",\"offline_since_ms\":null"

static const Case cases[] = {
        /* what hub-store's control_status() writes, abridged */
        { "{\"uplink\":\"down\",\"links_up\":0,\"links_total\":3" DOWN_SINCE ",\"offline_count\":1}", 0,
          UPLINK_KNOWN_DOWN },
        { "{\"uplink\":\"up\",\"links_up\":2" NOT_DOWN "}", 0, UPLINK_KNOWN_UP },
        /* links open but none has failed yet: hub-store says "down" without a time */
        { "{\"uplink\":\"down\",\"links_up\":0" NOT_DOWN "}", 0, UPLINK_KNOWN_UNSURE },
        { "{\"uplink\":\"idle\",\"links_up\":0" NOT_DOWN "}", 0, UPLINK_KNOWN_UNSURE },
        /* one link up is enough to ask the cloud, whatever the summary says */
        { "{\"uplink\":\"down\",\"links_up\":1" DOWN_SINCE "}", 0, UPLINK_KNOWN_UP },
        /* anything else: not sure, the caller asks the cloud as before */
        { "{\"uplink\":\"sideways\",\"links_up\":0" DOWN_SINCE "}", -EBADMSG, 0 },
        { "{\"uplink\":\"down\",\"links_up\":0}", -EBADMSG, 0 },
        { "{\"uplink\":\"down\"" DOWN_SINCE "}", -EBADMSG, 0 },
        { "{\"links_up\":0" DOWN_SINCE "}", -EBADMSG, 0 },
        { "{\"uplink\":\"down\",\"links_up\":-1" DOWN_SINCE "}", -EBADMSG, 0 },
        { "{\"uplink\":\"down\",\"links_up\":\"0\"" DOWN_SINCE "}", -EBADMSG, 0 },
        { "{\"uplink\":\"down\",\"links_up\":0,\"offline_since_ms\":\"yesterday\"}", -EBADMSG, 0 },
        { "{\"uplink\":0,\"links_up\":0" DOWN_SINCE "}", -EBADMSG, 0 },
        { "{\"uplink\":\"up\",\"uplink\":\"down\",\"links_up\":0" DOWN_SINCE "}", -EBADMSG, 0 },
        { "[\"down\"]", -EBADMSG, 0 },
        { "{\"uplink\":\"down\",\"links_up\":0" DOWN_SINCE, -EBADMSG, 0 },
        { "", -EBADMSG, 0 },
};

static void test_parse(void **state) {
        unsigned failures = 0;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                UplinkKnown got = _UPLINK_KNOWN_INVALID;
                int r = uplink_status_parse(cases[i].json, strlen(cases[i].json), &got);
                if (r != cases[i].want_r || (r == 0 && got != cases[i].want)) {
                        fprintf(stderr, "case %zu '%s': got %d/%d, want %d/%d\n", i, cases[i].json, r, got,
                                cases[i].want_r, cases[i].want);
                        failures++;
                }
        }
        assert_int_equal(failures, 0);
}

static void test_parse_is_bounded_by_len(void **state) {
        static const char whole[] = "{\"uplink\":\"down\",\"links_up\":0" DOWN_SINCE "}";
        static const char text[] = "{\"uplink\":\"down\",\"links_up\":0" DOWN_SINCE "}trailing garbage";
        UplinkKnown got;

        /* The frame field is not NUL-terminated: only len bytes count. */
        assert_int_equal(uplink_status_parse(text, strlen(whole), &got), 0);
        assert_int_equal(got, UPLINK_KNOWN_DOWN);
        assert_int_equal(uplink_status_parse(text, sizeof(text) - 1, &got), -EBADMSG);
}

static void test_query_without_hub_store(void **state) {
        UplinkKnown got;

        /* Not running: an error, never a guess. */
        assert_true(uplink_query("/nonexistent/edgehub/hub-store.sock", UPLINK_QUERY_TIMEOUT_USEC, &got) < 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_parse_is_bounded_by_len),
                cmocka_unit_test(test_query_without_hub_store),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
