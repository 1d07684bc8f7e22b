/* Unit tests: the $edgeHub twin's desired properties */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/iothub/edgehub-desired.h"
#include "proto/util/cleanup.h"

static int parse(const char *json, EdgeHubDesired *ret, char **ret_error) {
        return edgehub_desired_parse(json, strlen(json), ret, ret_error);
}

static void test_schema_1_0(void **state) {
        EdgeHubDesired d = EDGEHUB_DESIRED_NULL;
        char *error = NULL;
        (void) state;

        assert_int_equal(parse("{\"schemaVersion\": \"1.0\","
                               " \"routes\": {\"up\": \"FROM /messages/* INTO $upstream\","
                               "              \"f\": \"FROM /messages/modules/a/outputs/o INTO BrokeredEndpoint(\\\"/modules/b/inputs/i\\\")\"},"
                               " \"storeAndForwardConfiguration\": {\"timeToLiveSecs\": 7200},"
                               " \"$version\": 12, \"$metadata\": {\"x\": 1}}",
                               &d, &error),
                         0);
        assert_null(error);
        assert_string_equal(d.schema_version, "1.0");
        assert_int_equal(d.version, 12);
        assert_int_equal(d.ttl_secs, 7200);
        assert_int_equal(d.routes.n, 2);
        assert_string_equal(d.routes.specs[0].name, "up");
        assert_string_equal(d.routes.specs[0].text, "FROM /messages/* INTO $upstream");
        assert_int_equal(d.routes.specs[0].priority, 0);
        assert_int_equal(d.routes.specs[0].time_to_live_secs, 0);
        assert_string_equal(d.routes.specs[1].text,
                            "FROM /messages/modules/a/outputs/o INTO BrokeredEndpoint(\"/modules/b/inputs/i\")");
        edgehub_desired_deinit(&d);

        /* The spec's empty routes; no TTL, no $version. */
        assert_int_equal(parse("{\"schemaVersion\": \"1.0\", \"routes\": {}}", &d, &error), 0);
        assert_int_equal(d.routes.n, 0);
        assert_int_equal(d.ttl_secs, 0);
        assert_int_equal(d.version, -1);
        edgehub_desired_deinit(&d);

        /* 1.0 has no route objects. */
        assert_int_equal(parse("{\"schemaVersion\": \"1.0\", \"routes\": {\"r\": {\"route\": \"FROM /* INTO $upstream\"}}}",
                               &d, &error),
                         -EBADMSG);
        assert_string_equal(error, "routes.r: expected a string (schemaVersion 1.0)");
        free(error);
}

static void test_schema_1_1(void **state) {
        EdgeHubDesired d = EDGEHUB_DESIRED_NULL;
        char *error = NULL;
        (void) state;

        assert_int_equal(parse("{\"schemaVersion\": \"1.1\", \"routes\": {"
                               "  \"plain\": \"FROM /messages/* INTO $upstream\","
                               "  \"full\": {\"route\": \"FROM /messages/* WHERE a = 'b' INTO $upstream\","
                               "             \"priority\": 9, \"timeToLiveSecs\": 86400},"
                               "  \"bare\": {\"route\": \"FROM /* INTO $upstream\"}},"
                               " \"storeAndForwardConfiguration\": {\"timeToLiveSecs\": 60}}",
                               &d, &error),
                         0);
        assert_int_equal(d.routes.n, 3);
        const RouteSpec *full = route_specs_find(&d.routes, "full");
        assert_non_null(full);
        assert_string_equal(full->text, "FROM /messages/* WHERE a = 'b' INTO $upstream");
        assert_int_equal(full->priority, 9);
        assert_int_equal(full->time_to_live_secs, 86400);
        const RouteSpec *bare = route_specs_find(&d.routes, "bare");
        assert_int_equal(bare->priority, 0);
        assert_int_equal(bare->time_to_live_secs, 0);
        assert_int_equal(d.ttl_secs, 60);
        edgehub_desired_deinit(&d);
}

static void test_errors(void **state) {
        static const struct {
                const char *json;
                const char *error; /* a prefix of the message */
        } cases[] = {
                { "", "invalid JSON at line" },
                { "[]", "invalid desired properties:" },
                { "{\"routes\": {}}", "invalid desired properties:" },
                { "{\"schemaVersion\": 1.0, \"routes\": {}}", "invalid desired properties:" },
                { "{\"schemaVersion\": \"2.0\", \"routes\": {}}", "unsupported schemaVersion '2.0' (1.0, 1.1 or 1.2)" },
                { "{\"schemaVersion\": \"1.1\"}", "invalid desired properties:" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": []}", "routes: expected an object" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {\"r\": 5}}", "routes.r: expected a string or {route, priority, timeToLiveSecs}" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {\"r\": {\"priority\": 1}}}", "routes.r: expected a string or" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {\"r\": {\"route\": \"x\", \"ttl\": 1}}}", "routes.r: expected a string or" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {\"r\": {\"route\": \"x\", \"priority\": \"1\"}}}", "routes.r: expected a string or" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {\"r\": {\"route\": \"x\", \"priority\": 10}}}", "routes.r: priority must be 0..9" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {\"r\": {\"route\": \"x\", \"priority\": -1}}}", "routes.r: priority must be 0..9" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {\"r\": {\"route\": \"x\", \"timeToLiveSecs\": -5}}}", "routes.r: timeToLiveSecs must be" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {\"r\": {\"route\": \"x\", \"timeToLiveSecs\": 4294967296}}}", "routes.r: timeToLiveSecs must be" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {\"\": \"x\"}}", "routes: invalid route name ''" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {\"a\\nb\": \"x\"}}", "routes: invalid route name 'a?b'" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {\"r\": \"a\", \"r\": \"b\"}}", "invalid JSON at line" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {}, \"storeAndForwardConfiguration\": 5}", "storeAndForwardConfiguration:" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {}, \"storeAndForwardConfiguration\": {\"timeToLiveSecs\": \"1\"}}", "storeAndForwardConfiguration:" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {}, \"storeAndForwardConfiguration\": {\"timeToLiveSecs\": 0}}", "storeAndForwardConfiguration.timeToLiveSecs must be 1.." },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {}, \"storeAndForwardConfiguration\": {\"timeToLiveSecs\": -1}}", "storeAndForwardConfiguration.timeToLiveSecs must be 1.." },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {}, \"$version\": \"x\"}", "invalid desired properties:" },
                { "{\"schemaVersion\": \"1.1\", \"routes\": {\"r\": \"a\\u0000b\"}}", "invalid JSON at line" },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                EdgeHubDesired d = EDGEHUB_DESIRED_NULL;
                _cleanup_free_ char *error = NULL;
                int r = parse(cases[i].json, &d, &error);
                if (r != -EBADMSG || !error || strncmp(error, cases[i].error, strlen(cases[i].error)) != 0 ||
                    strchr(error, '\n'))
                        fail_msg("%s: got %d '%s', want '%s'", cases[i].json, r, error ?: "(null)", cases[i].error);
                assert_null(d.schema_version);
        }
}

static void test_limits(void **state) {
        EdgeHubDesired d = EDGEHUB_DESIRED_NULL;
        _cleanup_free_ char *error = NULL;
        (void) state;

        size_t len = EDGEHUB_DESIRED_MAX + 1;
        _cleanup_free_ char *big = malloc(len);
        assert_non_null(big);
        memset(big, ' ', len);
        assert_int_equal(edgehub_desired_parse(big, len, &d, &error), -EBADMSG);
        assert_string_equal(error, "desired properties larger than 65536 bytes");
        free(TAKE_PTR(error));

        /* More routes than ROUTE_SPECS_MAX. */
        size_t cap = 64 * 1024;
        _cleanup_free_ char *many = malloc(cap);
        assert_non_null(many);
        char *p = stpcpy(many, "{\"schemaVersion\":\"1.0\",\"routes\":{");
        for (unsigned i = 0; i <= ROUTE_SPECS_MAX; i++)
                p += sprintf(p, "%s\"%u\":\"x\"", i ? "," : "", i);
        strcpy(p, "}}");
        assert_true(strlen(many) < EDGEHUB_DESIRED_MAX);
        assert_int_equal(parse(many, &d, &error), -EBADMSG);
        assert_string_equal(error, "routes: more than 1024 routes");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_schema_1_0),
                cmocka_unit_test(test_schema_1_1),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_limits),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
