/* Unit tests: the workload API's requests (proto/iothub/workload-request.h) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/iothub/workload-request.h"
#include "proto/util/cleanup.h"

#define V "2018-06-28"
#define SIGN "/modules/sample/genid/637f0e6b12ab/sign"
/* base64("myhub.azure-devices.net%2Fdevices%2Fedge-1%2Fmodules%2Fsample\n1700000000") */
#define DATA "bXlodWIuYXp1cmUtZGV2aWNlcy5uZXQlMkZkZXZpY2VzJTJGZWRnZS0xJTJGbW9kdWxlcyUyRnNhbXBsZQoxNzAwMDAwMDAw"
#define BODY "{\"keyId\":\"primary\",\"algo\":\"HMACSHA256\",\"data\":\"" DATA "\"}"

static int parse(const char *method, const char *path, const char *v, const char *body, WorkloadRequest *r,
                 const char **error) {
        return workload_request_parse(method, path, v, body, body ? strlen(body) : 0, r, error);
}

static void test_good(void **state) {
        WorkloadRequest r;
        const char *error = NULL;

        assert_int_equal(parse("GET", "/trust-bundle", V, NULL, &r, &error), 0);
        assert_int_equal(r.kind, WORKLOAD_TRUST_BUNDLE);
        assert_null(r.module_id);
        workload_request_deinit(&r);

        assert_int_equal(parse("POST", SIGN, V, BODY, &r, &error), 0);
        assert_int_equal(r.kind, WORKLOAD_SIGN);
        assert_string_equal(r.module_id, "sample");
        assert_string_equal(r.generation_id, "637f0e6b12ab");
        assert_int_equal(r.data_len, strlen("myhub.azure-devices.net%2Fdevices%2Fedge-1%2Fmodules%2Fsample\n1700000000"));
        assert_memory_equal(r.data, "myhub.azure-devices.net%2F", 26);
        workload_request_deinit(&r);

        /* Newer api-versions, and a module id with IoT Hub's special characters. */
        assert_int_equal(parse("POST", "/modules/a$b.c/genid/1/sign", "2019-01-30", BODY, &r, &error), 0);
        assert_string_equal(r.module_id, "a$b.c");
        workload_request_deinit(&r);
        assert_int_equal(parse("GET", "/trust-bundle", "2020-10-10-preview", NULL, &r, &error), 0);
        workload_request_deinit(&r);
}

static void test_bad(void **state) {
        static const struct {
                const char *method, *path, *version, *body;
                int status;
        } cases[] = {
                { "GET", "/", V, NULL, 404 },
                { "GET", "/trust-bundle/x", V, NULL, 404 },
                { "GET", "/modules/sample/genid/1/decrypt", V, NULL, 404 },
                { "GET", "/modules/sample/sign", V, NULL, 404 },
                { "GET", "/modules//genid/1/sign/", V, NULL, 404 },
                { "POST", "/trust-bundle", V, NULL, 405 },
                { "GET", SIGN, V, NULL, 405 },
                { "DELETE", SIGN, V, BODY, 405 },
                { "GET", "/trust-bundle", NULL, NULL, 400 },
                { "GET", "/trust-bundle", "yesterday", NULL, 400 },
                { "GET", "/trust-bundle", "2018-06-28;x", NULL, 400 },
                { "GET", "/trust-bundle", V, "x", 400 },
                { "POST", SIGN, NULL, BODY, 400 },
                { "POST", "/modules//genid/1/sign", V, BODY, 400 },
                { "POST", "/modules/a b/genid/1/sign", V, BODY, 400 },
                { "POST", "/modules/sample/genid//sign", V, BODY, 400 },
                { "POST", "/modules/sample/genid/a/b/sign", V, BODY, 404 },
                { "POST", "/modules/sample/genid/a%2F/sign", V, BODY, 400 },
                { "POST", SIGN, V, "", 400 },
                { "POST", SIGN, V, "[]", 400 },
                { "POST", SIGN, V, "{\"keyId\":\"primary\",\"algo\":\"HMACSHA256\"}", 400 },
                { "POST", SIGN, V, "{\"keyId\":\"secondary\",\"algo\":\"HMACSHA256\",\"data\":\"" DATA "\"}", 400 },
                { "POST", SIGN, V, "{\"keyId\":\"primary\",\"algo\":\"HMACSHA1\",\"data\":\"" DATA "\"}", 400 },
                { "POST", SIGN, V, "{\"keyId\":\"primary\",\"algo\":\"HMACSHA256\",\"data\":\"!!\"}", 400 },
                { "POST", SIGN, V, "{\"keyId\":\"primary\",\"algo\":\"HMACSHA256\",\"data\":\"\"}", 400 },
                { "POST", SIGN, V, "{\"keyId\":\"primary\",\"algo\":\"HMACSHA256\",\"data\":7}", 400 },
                { "POST", SIGN, V, "{\"keyId\":\"primary\",\"keyId\":\"primary\",\"algo\":\"HMACSHA256\",\"data\":\"" DATA "\"}", 400 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                WorkloadRequest r;
                const char *error = NULL;
                int k = parse(cases[i].method, cases[i].path, cases[i].version, cases[i].body, &r, &error);
                if (k != cases[i].status)
                        fail_msg("case %zu (%s %s): got %d, want %d", i, cases[i].method, cases[i].path, k,
                                 cases[i].status);
                assert_non_null(error);
                assert_null(r.module_id);
                assert_null(r.data);
        }
}

static void test_limits(void **state) {
        WorkloadRequest r;
        const char *error = NULL;
        _cleanup_free_ char *big = malloc(WORKLOAD_BODY_MAX + 2), *data = NULL, *body = NULL;

        /* An oversized body is refused before it is parsed. */
        assert_non_null(big);
        memset(big, ' ', WORKLOAD_BODY_MAX + 1);
        big[WORKLOAD_BODY_MAX + 1] = '\0';
        assert_int_equal(parse("POST", SIGN, V, big, &r, &error), 413);

        /* 4096 bytes of data sign; 4097 do not. */
        for (size_t n = WORKLOAD_DATA_MAX; n <= WORKLOAD_DATA_MAX + 1; n++) {
                size_t enc = (n + 2) / 3 * 4;
                free(data);
                data = malloc(enc + 1);
                assert_non_null(data);
                memset(data, 'A', enc);
                /* n % 3 == 1: "AA==" at the end; n % 3 == 2: "AAA=". */
                if (n % 3 == 1)
                        data[enc - 1] = data[enc - 2] = '=';
                else if (n % 3 == 2)
                        data[enc - 1] = '=';
                data[enc] = '\0';
                free(body);
                assert_true(asprintf(&body, "{\"keyId\":\"primary\",\"algo\":\"HMACSHA256\",\"data\":\"%s\"}", data) > 0);
                int k = parse("POST", SIGN, V, body, &r, &error);
                assert_int_equal(k, n == WORKLOAD_DATA_MAX ? 0 : 400);
                if (k == 0)
                        assert_int_equal(r.data_len, WORKLOAD_DATA_MAX);
                workload_request_deinit(&r);
        }
        /* A 65-character generation id. */
        assert_int_equal(parse("POST", "/modules/m/genid/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/sign",
                               V, BODY, &r, &error), 400);
}

static void test_error_body(void **state) {
        _cleanup_free_ char *b = workload_error_body("it's \"quoted\"");
        assert_string_equal(b, "{\"message\":\"it's \\\"quoted\\\"\"}");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good),
                cmocka_unit_test(test_bad),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_error_body),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
