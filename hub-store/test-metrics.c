/* Unit tests: Prometheus label values (identities are device-chosen text) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "hub-store/metrics.h"
#include "proto/util/cleanup.h"

static char *label(const char *s) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);

        assert_non_null(f);
        metrics_write_label_value(f, s);
        assert_int_equal(fclose(f), 0);
        return text;
}

static void test_label_values(void **state) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "dev-1", "dev-1" },
                { "dev/mod", "dev/mod" },
                { "a\"b", "a\\\"b" },
                { "a\\b", "a\\\\b" },
                { "a\nb", "a\\nb" },
                { "", "" },
                { "$edgeHub", "$edgeHub" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                _cleanup_free_ char *got = label(cases[i].in);
                assert_string_equal(got, cases[i].out);
        }
        _cleanup_free_ char *null = label(NULL);
        assert_string_equal(null, "");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_label_values),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
