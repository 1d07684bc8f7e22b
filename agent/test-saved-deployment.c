/* Tests of reading the agent's saved deployment file back */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "agent/saved-deployment.h"
#include "proto/util/cleanup.h"

static void test_whole_file(void **state) {
        static const char text[] =
                "{\"manifest\": {\"schemaVersion\": \"1.1\"}, \"source\": \"twin\", \"twinVersion\": 7, "
                "\"appliedAt\": 1700000000000000, \"last\": {\"code\": 400, \"description\": \"bad\", \"version\": 8, "
                "\"source\": \"file\"}, \"twin\": {\"code\": 200, \"description\": \"\", \"version\": 7}}";
        _cleanup_(saved_deployment_deinit) SavedDeployment d = SAVED_DEPLOYMENT_NULL;
        _cleanup_free_ char *error = NULL;
        SavedOutcome o;

        assert_int_equal(saved_deployment_parse(text, strlen(text), &d, &error), 0);
        assert_null(error);
        assert_non_null(d.manifest);
        assert_string_equal(d.source, "twin");
        assert_int_equal(d.twin_version, 7);
        assert_int_equal(d.applied_at, 1700000000000000);
        assert_int_equal(saved_outcome_parse(d.last, &o), 0);
        assert_int_equal(o.code, 400);
        assert_string_equal(o.description, "bad");
        assert_int_equal(o.version, 8);
        assert_string_equal(o.source, "file");
        assert_int_equal(saved_outcome_parse(d.twin, &o), 0);
        assert_int_equal(o.code, 200);
        assert_null(o.source);
}

static void test_every_key_optional(void **state) {
        _cleanup_(saved_deployment_deinit) SavedDeployment d = SAVED_DEPLOYMENT_NULL;
        _cleanup_free_ char *error = NULL;
        SavedOutcome o;

        assert_int_equal(saved_deployment_parse("{\"manifest\": null}", 18, &d, &error), 0);
        assert_null(d.manifest);
        assert_null(d.source);
        assert_int_equal(d.twin_version, -1);
        assert_int_equal(saved_outcome_parse(d.last, &o), -EBADMSG);
}

static void test_malformed(void **state) {
        static const char *const bad[] = {
                "", "[]", "{\"source\": 1}", "{\"twinVersion\": \"7\"}", "{\"manifest\": {}, \"manifest\": {}}",
                "{\"appliedAt\": 1.5}", "not json",
                /* Not a manifest at all: the agent could not write it back out to apply it. */
                "{\"manifest\": 3}", "{\"manifest\": \"x\"}", "{\"manifest\": [1]}", "{\"manifest\": true}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                SavedDeployment d = SAVED_DEPLOYMENT_NULL;
                _cleanup_free_ char *error = NULL;

                assert_int_equal(saved_deployment_parse(bad[i], strlen(bad[i]), &d, &error), -EBADMSG);
                assert_non_null(error);
                assert_null(d.doc);
        }
}

static void test_outcomes_refused(void **state) {
        static const char *const bad[] = {
                "{\"code\": 99, \"description\": \"\", \"version\": 1}",
                "{\"code\": 600, \"description\": \"\", \"version\": 1}",
                "{\"code\": 200, \"version\": 1}",
                "{\"code\": 200, \"description\": \"\"}",
                "{\"code\": \"200\", \"description\": \"\", \"version\": 1}",
                "{\"code\": 200, \"description\": \"\", \"version\": 1, \"source\": 3}",
                "[]",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                json_t *o = json_loads(bad[i], 0, NULL);
                SavedOutcome out;

                assert_non_null(o);
                assert_int_equal(saved_outcome_parse(o, &out), -EBADMSG);
                json_decref(o);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_whole_file),
                cmocka_unit_test(test_every_key_optional),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_outcomes_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
