/* Unit tests: direct method bodies, replies and topics */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/iothub/method-request.h"
#include "proto/util/cleanup.h"

static void test_request_parse(void **state) {
        static const struct {
                const char *body;
                int expect;
                const char *name, *payload;
                unsigned rt, ct;
        } cases[] = {
                { "{\"methodName\":\"reboot\"}", 0, "reboot", "null", 30, 0 },
                { "{\"methodName\":\"reboot\",\"payload\":{\"a\": [1, 2, \"x\"]},\"responseTimeoutInSeconds\":5,"
                  "\"connectTimeoutInSeconds\":300}",
                  0, "reboot", "{\"a\":[1,2,\"x\"]}", 5, 300 },
                { "{\"methodName\":\"m\",\"payload\":null}", 0, "m", "null", 30, 0 },
                { "{\"methodName\":\"m\",\"payload\":\"text\"}", 0, "m", "\"text\"", 30, 0 },
                { "{\"methodName\":\"m\",\"payload\":42,\"responseTimeoutInSeconds\":300}", 0, "m", "42", 300, 0 },
                /* unknown members are ignored, as IoT Hub does */
                { "{\"methodName\":\"m\",\"extra\":1}", 0, "m", "null", 30, 0 },
                { "{\"methodName\":\"a-b_c.d~e!*'&%^|`\"}", 0, "a-b_c.d~e!*'&%^|`", "null", 30, 0 },
                { "", -EBADMSG },
                { "not json", -EBADMSG },
                { "[1,2]", -EBADMSG },
                { "\"methodName\"", -EBADMSG },
                { "{\"methodName\":\"m\"", -EBADMSG },
                { "{\"methodName\":\"m\",\"methodName\":\"n\"}", -EBADMSG },
                { "{\"methodName\":7}", -EBADMSG },
                { "{\"methodName\":\"m\",\"responseTimeoutInSeconds\":\"30\"}", -EBADMSG },
                { "{\"methodName\":\"m\",\"responseTimeoutInSeconds\":30.5}", -EBADMSG },
                { "{\"methodName\":\"m\",\"connectTimeoutInSeconds\":true}", -EBADMSG },
                { "{}", -EINVAL },
                { "{\"payload\":1}", -EINVAL },
                { "{\"methodName\":\"\"}", -EINVAL },
                { "{\"methodName\":\"a/b\"}", -EINVAL },
                { "{\"methodName\":\"a b\"}", -EINVAL },
                { "{\"methodName\":\"$edge\"}", -EINVAL },
                { "{\"methodName\":\"a#\"}", -EINVAL },
                { "{\"methodName\":\"a+\"}", -EINVAL },
                { "{\"methodName\":\"a?b\"}", -EINVAL },
                { "{\"methodName\":\"caf\\u00e9\"}", -EINVAL },
                { "{\"methodName\":\"a\\tb\"}", -EINVAL },
                { "{\"methodName\":\"m\",\"responseTimeoutInSeconds\":4}", -ERANGE },
                { "{\"methodName\":\"m\",\"responseTimeoutInSeconds\":301}", -ERANGE },
                { "{\"methodName\":\"m\",\"responseTimeoutInSeconds\":-1}", -ERANGE },
                { "{\"methodName\":\"m\",\"connectTimeoutInSeconds\":301}", -ERANGE },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                MethodRequest r = METHOD_REQUEST_NULL;
                const char *error = NULL;
                int rc = method_request_parse(cases[i].body, strlen(cases[i].body), &r, &error);
                if (rc != cases[i].expect)
                        fail_msg("body '%s': got %d, want %d", cases[i].body, rc, cases[i].expect);
                if (rc < 0) {
                        assert_non_null(error);
                        assert_null(r.name);
                        continue;
                }
                assert_string_equal(r.name, cases[i].name);
                assert_string_equal(r.payload, cases[i].payload);
                assert_int_equal(r.payload_len, strlen(cases[i].payload));
                assert_int_equal(r.response_timeout_sec, cases[i].rt);
                assert_int_equal(r.connect_timeout_sec, cases[i].ct);
                method_request_deinit(&r);
                assert_null(r.name);
        }
}

static void test_request_limits(void **state) {
        MethodRequest r = METHOD_REQUEST_NULL;
        const char *error = NULL;
        char name[METHOD_NAME_MAX + 2];

        /* name length: 128 is fine, 129 is not */
        memset(name, 'n', sizeof(name));
        name[METHOD_NAME_MAX] = '\0';
        assert_true(method_name_is_valid(name));
        name[METHOD_NAME_MAX] = 'n';
        name[METHOD_NAME_MAX + 1] = '\0';
        assert_false(method_name_is_valid(name));
        assert_false(method_name_is_valid(NULL));

        /* payload: a string of exactly 128 KiB of JSON passes, one byte more does not */
        size_t cap = METHOD_PAYLOAD_MAX + 100;
        _cleanup_free_ char *body = malloc(cap);
        assert_non_null(body);
        const char *head = "{\"methodName\":\"big\",\"payload\":\"";
        size_t fill = METHOD_PAYLOAD_MAX - 2;
        size_t n = (size_t) snprintf(body, cap, "%s", head);
        memset(body + n, 'x', fill);
        n += fill;
        n += (size_t) snprintf(body + n, cap - n, "\"}");
        assert_int_equal(method_request_parse(body, n, &r, &error), 0);
        assert_int_equal(r.payload_len, METHOD_PAYLOAD_MAX);
        method_request_deinit(&r);

        n = (size_t) snprintf(body, cap, "%s", head);
        memset(body + n, 'x', fill + 1);
        n += fill + 1;
        n += (size_t) snprintf(body + n, cap - n, "\"}");
        assert_int_equal(method_request_parse(body, n, &r, &error), -E2BIG);
        assert_non_null(strstr(error, "128 KiB"));

        /* an oversized body is refused before it is parsed */
        _cleanup_free_ char *huge = calloc(1, METHOD_BODY_MAX + 1);
        assert_non_null(huge);
        memset(huge, ' ', METHOD_BODY_MAX + 1);
        assert_int_equal(method_request_parse(huge, METHOD_BODY_MAX + 1, &r, NULL), -E2BIG);
}

static void test_response(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *payload = NULL;
        int status;

        assert_int_equal(method_response_format(200, "{\"x\": 1}", 8, &a), 0);
        assert_string_equal(a, "{\"status\":200,\"payload\":{\"x\":1}}");
        assert_int_equal(method_response_format(404, "", 0, &b), 0);
        assert_string_equal(b, "{\"status\":404,\"payload\":null}");
        assert_int_equal(method_response_format(200, "\"s\"", 3, &c), 0);
        assert_string_equal(c, "{\"status\":200,\"payload\":\"s\"}");

        char *x = NULL;
        assert_int_equal(method_response_format(200, "nope", 4, &x), -EBADMSG);
        assert_int_equal(method_response_format(200, "{\"a\":1,\"a\":2}", 13, &x), -EBADMSG);
        assert_int_equal(method_response_format(200, "{} {}", 5, &x), -EBADMSG);
        assert_null(x);
        assert_int_equal(method_payload_check("", 0), 0);
        assert_int_equal(method_payload_check("[1]", 3), 0);
        assert_int_equal(method_payload_check("[1", 2), -EBADMSG);
        assert_int_equal(method_payload_check("1", METHOD_PAYLOAD_MAX + 1), -E2BIG);

        assert_int_equal(method_response_parse(a, strlen(a), &status, &payload), 0);
        assert_int_equal(status, 200);
        assert_string_equal(payload, "{\"x\":1}");
        assert_int_equal(method_response_parse("{\"payload\":1}", 13, &status, &x), -EBADMSG);
        assert_int_equal(method_response_parse("{\"status\":1000}", 15, &status, &x), -EBADMSG);

        _cleanup_free_ char *e = NULL;
        assert_int_equal(method_error_format("DeviceNotOnline", "device 'd' is not connected", &e), 0);
        assert_string_equal(e, "{\"errorCode\":\"DeviceNotOnline\",\"message\":\"device 'd' is not connected\","
                               "\"Message\":\"ErrorCode:DeviceNotOnline;device 'd' is not connected\"}");
}

static void test_topic_parse(void **state) {
        static const struct {
                const char *rest;
                int expect;
                MethodTopicKind kind;
                const char *name, *device, *module;
                int status;
                const char *rid;
        } cases[] = {
                { "methods/POST/reboot/?$rid=1", 0, METHOD_TOPIC_POST, "reboot", NULL, NULL, 0, "1" },
                { "methods/POST/reboot/?$rid=ab-12&x=y", 0, METHOD_TOPIC_POST, "reboot", NULL, NULL, 0, "ab-12" },
                { "methods/POST/reboot/?x=%3F&$rid=7", 0, METHOD_TOPIC_POST, "reboot", NULL, NULL, 0, "7" },
                { "methods/res/200/?$rid=7", 0, METHOD_TOPIC_RES, NULL, NULL, NULL, 200, "7" },
                { "methods/res/0/?$rid=7", 0, METHOD_TOPIC_RES, NULL, NULL, NULL, 0, "7" },
                { "methods/res/999/?$rid=7", 0, METHOD_TOPIC_RES, NULL, NULL, NULL, 999, "7" },
                { "methods/invoke/dev1/?$rid=r1", 0, METHOD_TOPIC_INVOKE, NULL, "dev1", NULL, 0, "r1" },
                { "methods/invoke/dev1/mod1/?$rid=r1", 0, METHOD_TOPIC_INVOKE, NULL, "dev1", "mod1", 0, "r1" },
                { "methods/invoke/a?b/?$rid=r1", 0, METHOD_TOPIC_INVOKE, NULL, "a?b", NULL, 0, "r1" },
                /* from a device this is a call to module "200" of device "res" */
                { "methods/invoke/res/200/?$rid=1", 0, METHOD_TOPIC_INVOKE, NULL, "res", "200", 0, "1" },
                { "methods/POST/reboot/?$rid=", -EINVAL },
                { "methods/POST/reboot/?x=1", -EINVAL },
                { "methods/POST/reboot/", -EINVAL },
                { "methods/POST/reboot?$rid=1", -EINVAL },
                { "methods/POST//?$rid=1", -EINVAL },
                { "methods/POST/a b/?$rid=1", -EINVAL },
                { "methods/POST/a/b/?$rid=1", -EINVAL },
                { "methods/POST/reboot/?$rid=a%20b", -EINVAL },
                { "methods/POST/reboot/?$rid=a%26b", -EINVAL },
                { "methods/res/1000/?$rid=1", -EINVAL },
                { "methods/res/-1/?$rid=1", -EINVAL },
                { "methods/res/+1/?$rid=1", -EINVAL },
                { "methods/res//?$rid=1", -EINVAL },
                { "methods/res/abc/?$rid=1", -EINVAL },
                { "methods/invoke//?$rid=1", -EINVAL },
                { "methods/invoke/d/m/x/?$rid=1", -EINVAL },
                { "methods/invoke/d e/?$rid=1", -EINVAL },
                { "methods/GET/x/?$rid=1", -EINVAL },
                { "twin/GET/?$rid=1", -EINVAL },
                { "methods/", -EINVAL },
                { "", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                MethodTopic t = METHOD_TOPIC_NULL;
                int r = method_topic_parse(cases[i].rest, &t);
                if (r != cases[i].expect)
                        fail_msg("topic '%s': got %d, want %d", cases[i].rest, r, cases[i].expect);
                if (r < 0) {
                        assert_int_equal(t.kind, _METHOD_TOPIC_KIND_INVALID);
                        assert_null(t.rid);
                        continue;
                }
                assert_int_equal(t.kind, cases[i].kind);
                if (cases[i].name)
                        assert_string_equal(t.name, cases[i].name);
                else
                        assert_null(t.name);
                if (cases[i].device)
                        assert_string_equal(t.device_id, cases[i].device);
                else
                        assert_null(t.device_id);
                if (cases[i].module)
                        assert_string_equal(t.module_id, cases[i].module);
                else
                        assert_null(t.module_id);
                assert_int_equal(t.status, cases[i].status);
                assert_string_equal(t.rid, cases[i].rid);
                method_topic_deinit(&t);
        }
}

static void test_topic_format(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
        char *x = NULL;

        assert_int_equal(method_topic_format_post("reboot", "42", &a), 0);
        assert_string_equal(a, "$iothub/methods/POST/reboot/?$rid=42");
        assert_int_equal(method_topic_format_res(false, 200, "42", &b), 0);
        assert_string_equal(b, "$iothub/methods/res/200/?$rid=42");
        assert_int_equal(method_topic_format_res(true, 504, "r-1", &c), 0);
        assert_string_equal(c, "$iothub/methods/invoke/res/504/?$rid=r-1");
        assert_int_equal(method_topic_format_post("a/b", "1", &x), -EINVAL);
        assert_int_equal(method_topic_format_post("a", "1&2", &x), -EINVAL);
        assert_int_equal(method_topic_format_res(false, 1000, "1", &x), -EINVAL);
        assert_null(x);

        /* what we format, we parse back */
        MethodTopic t = METHOD_TOPIC_NULL;
        assert_int_equal(method_topic_parse(a + strlen("$iothub/"), &t), 0);
        assert_int_equal(t.kind, METHOD_TOPIC_POST);
        assert_string_equal(t.name, "reboot");
        assert_string_equal(t.rid, "42");
        method_topic_deinit(&t);
}

static void test_target_from_path(void **state) {
        static const struct {
                const char *path;
                int expect;
                const char *target;
        } cases[] = {
                { "/twins/child-1/methods", 0, "child-1" },
                { "/twins/edge-1/modules/filter/methods", 0, "edge-1/filter" },
                { "/twins/edge-1/modules/%24edgeAgent/methods", 0, "edge-1/$edgeAgent" },
                { "/twins/a%2Fb/methods", -EINVAL },
                { "/twins//methods", -EINVAL },
                { "/twins/d/methods/", -EINVAL },
                { "/twins/d/modules//methods", -EINVAL },
                { "/twins/d/modules/m/methods/x", -EINVAL },
                { "/twins/d", -EINVAL },
                { "/twins/d/method", -EINVAL },
                { "/devices/d/methods", -EINVAL },
                { "twins/d/methods", -EINVAL },
                { "/twins/d%zz/methods", -EINVAL },
                { "/twins/d%00/methods", -EINVAL },
                { "/twins/d e/methods", -EINVAL },
                { "/", -EINVAL },
                { "", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *target = NULL;
                int r = method_target_from_path(cases[i].path, &target);
                if (r != cases[i].expect)
                        fail_msg("path '%s': got %d, want %d", cases[i].path, r, cases[i].expect);
                if (r == 0)
                        assert_string_equal(target, cases[i].target);
                else
                        assert_null(target);
                free(target);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_request_parse),
                cmocka_unit_test(test_request_limits),
                cmocka_unit_test(test_response),
                cmocka_unit_test(test_topic_parse),
                cmocka_unit_test(test_topic_format),
                cmocka_unit_test(test_target_from_path),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
