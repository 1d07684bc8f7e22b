/* Unit tests: upstream telemetry topics */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "hub-store/upstream-topic.h"

static void check(const char *d, const char *m, const char *bag, const char *output, int want_r, const char *want) {
        char *topic = NULL;
        int r = upstream_topic_format(d, m, bag, output, &topic);

        assert_int_equal(r, want_r);
        if (want)
                assert_string_equal(topic, want);
        free(topic);
}

static void test_topics(void **state) {
        check("dev1", NULL, "", NULL, 0, "devices/dev1/messages/events/");
        check("dev1", NULL, "a=1&%24.ct=application%2Fjson", NULL, 0,
              "devices/dev1/messages/events/a=1&%24.ct=application%2Fjson");
        check("dev1", "mod", "a=1", NULL, 0, "devices/dev1/modules/mod/messages/events/a=1");
        /* A module output becomes $.on, unless the bag names one already. */
        check("dev1", "mod", "a=1", "out 1", 0, "devices/dev1/modules/mod/messages/events/a=1&%24.on=out%201");
        check("dev1", "mod", "", "o", 0, "devices/dev1/modules/mod/messages/events/%24.on=o");
        check("dev1", "mod", "%24.on=x", "o", 0, "devices/dev1/modules/mod/messages/events/%24.on=x");
        check("dev1", "mod", NULL, NULL, 0, "devices/dev1/modules/mod/messages/events/");
        /* Bad ids or bags. */
        check("", NULL, "", NULL, -EINVAL, NULL);
        check("a/b", NULL, "", NULL, -EINVAL, NULL);
        check("d", "m#", "", NULL, -EINVAL, NULL);
        check("d", "m", "%zz=1", "o", -EINVAL, NULL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_topics),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
