/* Tests of the device scope page parser */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>

#include "auth-cache/scope-page.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

#define EDGE "edge1"

static int parse(const char *json, Scope **ret, char **ret_link) {
        return scope_page_parse(json, strlen(json), EDGE, ret, ret_link);
}

static const Identity *find(Scope *s, const char *name) {
        assert_true(scope_finalize(s, EDGE) >= 0);
        return scope_find(s, name);
}

static void test_good_page(void **state) {
        _cleanup_(scope_freep) Scope *s = NULL;
        _cleanup_free_ char *link = NULL;
        const Identity *id;
        const char *json =
                "{\"devices\":["
                "{\"deviceId\":\"edge1\",\"generationId\":\"1\",\"etag\":\"x\",\"status\":\"enabled\","
                " \"capabilities\":{\"iotEdge\":true},\"deviceScope\":\"ms-azure-iot-edge://edge1-1\",\"parentScopes\":[],"
                " \"authentication\":{\"symmetricKey\":{\"primaryKey\":\"ZWRnZQ==\",\"secondaryKey\":\"ZWRnZTI=\"},\"type\":\"sas\"}},"
                "{\"deviceId\":\"d1\",\"status\":\"enabled\",\"capabilities\":{\"iotEdge\":false},"
                " \"authentication\":{\"symmetricKey\":{\"primaryKey\":\"cDE=\",\"secondaryKey\":\"czE=\"},\"type\":\"sas\"}},"
                "{\"deviceId\":\"d2\",\"status\":\"disabled\","
                " \"authentication\":{\"symmetricKey\":{\"primaryKey\":\"cDI=\",\"secondaryKey\":null},\"type\":\"sas\"}}],"
                "\"modules\":["
                "{\"deviceId\":\"edge1\",\"moduleId\":\"$edgeHub\",\"authentication\":{\"symmetricKey\":{\"primaryKey\":\"aHVi\",\"secondaryKey\":\"aHViMg==\"},\"type\":\"sas\"}},"
                "{\"deviceId\":\"d2\",\"moduleId\":\"m\",\"authentication\":{\"symmetricKey\":{\"primaryKey\":\"bQ==\"},\"type\":\"sas\"}}],"
                "\"continuationLink\":null}";

        assert_int_equal(parse(json, &s, &link), 0);
        assert_null(link);
        assert_int_equal(s->n_items, 5);

        id = find(s, "edge1");
        assert_non_null(id);
        assert_true(id->edge);
        assert_true(id->enabled);

        id = find(s, "d1");
        assert_non_null(id);
        assert_false(id->edge);
        assert_true(id->enabled);
        assert_null(id->module_id);
        assert_string_equal(id->primary_key, "cDE=");
        assert_string_equal(id->secondary_key, "czE=");

        id = find(s, "d2");
        assert_non_null(id);
        assert_false(id->enabled);
        assert_null(id->secondary_key);
        assert_string_equal(identity_key(id), "cDI=");

        id = find(s, "edge1/$edgeHub");
        assert_non_null(id);
        assert_string_equal(id->device_id, "edge1");
        assert_string_equal(id->module_id, "$edgeHub");
        assert_true(id->enabled);

        /* A module follows its disabled device. */
        id = find(s, "d2/m");
        assert_non_null(id);
        assert_false(id->enabled);
}

static void test_continuation(void **state) {
        _cleanup_(scope_freep) Scope *s = NULL;
        _cleanup_free_ char *link = NULL;
        const char *json =
                "{\"devices\":[],\"modules\":[],\"continuationLink\":"
                "\"/devices/edge1/modules/%24edgeHub/devicesAndModulesInDeviceScope?api-version=2018-08-30-preview&continuationToken=abc%3D\"}";

        assert_int_equal(parse(json, &s, &link), 0);
        assert_int_equal(s->n_items, 0);
        assert_string_equal(link, "/devices/edge1/modules/%24edgeHub/devicesAndModulesInDeviceScope"
                                  "?api-version=2018-08-30-preview&continuationToken=abc%3D");
}

static void test_bad_continuation(void **state) {
        static const char *const links[] = {
                "\"//evil.example/x\"",
                "\"https://evil.example/x\"",
                "\"relative?x\"",
                "\"/a b\"",
                "\"/a\\r\\nHost: x\"",
                "\"/\\\\evil\"",
                "\"/\"",
                "42",
                "{}",
        };
        for (size_t i = 0; i < ELEMENTSOF(links); i++) {
                _cleanup_(scope_freep) Scope *s = NULL;
                _cleanup_free_ char *link = NULL, *json = NULL;
                assert_true(asprintf(&json, "{\"devices\":[],\"continuationLink\":%s}", links[i]) > 0);
                assert_int_equal(parse(json, &s, &link), -EBADMSG);
                assert_null(s);
                assert_null(link);
        }
}

static void test_extra_fields(void **state) {
        _cleanup_(scope_freep) Scope *s = NULL;
        _cleanup_free_ char *link = NULL;
        const char *json =
                "{\"version\":3,\"devices\":[{\"deviceId\":\"d1\",\"status\":\"enabled\",\"statusReason\":null,"
                "\"connectionState\":\"Disconnected\",\"cloudToDeviceMessageCount\":0,\"capabilities\":{\"iotEdge\":false,\"other\":1},"
                "\"authentication\":{\"symmetricKey\":{\"primaryKey\":\"cDE=\",\"secondaryKey\":\"czE=\",\"x\":[]},"
                "\"x509Thumbprint\":{\"primaryThumbprint\":null},\"type\":\"sas\"},\"tags\":{\"a\":{\"b\":[1,2]}}}],"
                "\"modules\":[],\"somethingNew\":{\"k\":true}}";

        assert_int_equal(parse(json, &s, &link), 0);
        assert_null(link);
        assert_non_null(find(s, "d1"));
}

static void test_missing_arrays(void **state) {
        _cleanup_(scope_freep) Scope *s = NULL;
        _cleanup_free_ char *link = NULL;

        assert_int_equal(parse("{}", &s, &link), 0);
        assert_int_equal(s->n_items, 0);
        assert_null(link);
}

static void test_wrong_types(void **state) {
        static const char *const pages[] = {
                "",
                "[]",
                "null",
                "{\"devices\":{}}",
                "{\"devices\":\"d1\"}",
                "{\"modules\":[1]}",
                "{\"devices\":[null]}",
                "{\"devices\":[{\"deviceId\":42,\"status\":\"enabled\"}]}",
                "{\"devices\":[{\"status\":\"enabled\"}]}",
                "{\"devices\":[{\"deviceId\":\"d1\"}]}",
                "{\"devices\":[{\"deviceId\":\"d1\",\"status\":true}]}",
                "{\"devices\":[{\"deviceId\":\"d1\",\"status\":\"maybe\"}]}",
                "{\"devices\":[{\"deviceId\":\"d1\",\"status\":\"enabled\",\"capabilities\":{\"iotEdge\":\"yes\"}}]}",
                "{\"devices\":[{\"deviceId\":\"d1\",\"status\":\"enabled\",\"capabilities\":[]}]}",
                "{\"devices\":[{\"deviceId\":\"d1\",\"status\":\"enabled\",\"authentication\":[]}]}",
                "{\"devices\":[{\"deviceId\":\"d1\",\"status\":\"enabled\",\"authentication\":{\"type\":1}}]}",
                "{\"devices\":[{\"deviceId\":\"d1\",\"status\":\"enabled\",\"authentication\":{\"type\":\"sas\",\"symmetricKey\":\"k\"}}]}",
                "{\"devices\":[{\"deviceId\":\"d1\",\"status\":\"enabled\",\"authentication\":{\"type\":\"sas\",\"symmetricKey\":{\"primaryKey\":5}}}]}",
                "{\"modules\":[{\"deviceId\":\"d1\"}]}",
                "{\"modules\":[{\"deviceId\":\"d1\",\"moduleId\":null}]}",
                "{\"devices\":[],\"devices\":[]}", /* duplicate keys */
                "{\"devices\":[]",
        };
        for (size_t i = 0; i < ELEMENTSOF(pages); i++) {
                _cleanup_(scope_freep) Scope *s = NULL;
                _cleanup_free_ char *link = NULL;
                print_message("page %zu: %s\n", i, pages[i]);
                assert_int_equal(parse(pages[i], &s, &link), -EBADMSG);
                assert_null(s);
        }
}

static void test_edge_as_child_rejected(void **state) {
        _cleanup_(scope_freep) Scope *s = NULL;
        _cleanup_free_ char *link = NULL;
        const char *json =
                "{\"devices\":["
                "{\"deviceId\":\"edge2\",\"status\":\"enabled\",\"capabilities\":{\"iotEdge\":true},"
                " \"authentication\":{\"symmetricKey\":{\"primaryKey\":\"ZQ==\"},\"type\":\"sas\"}},"
                "{\"deviceId\":\"d1\",\"status\":\"enabled\","
                " \"authentication\":{\"symmetricKey\":{\"primaryKey\":\"ZA==\"},\"type\":\"sas\"}}],"
                "\"modules\":["
                "{\"deviceId\":\"edge2\",\"moduleId\":\"$edgeHub\",\"authentication\":{\"symmetricKey\":{\"primaryKey\":\"ZQ==\"},\"type\":\"sas\"}},"
                "{\"deviceId\":\"edge1\",\"moduleId\":\"$edgeAgent\",\"authentication\":{\"symmetricKey\":{\"primaryKey\":\"YQ==\"},\"type\":\"sas\"}}]}";

        assert_int_equal(parse(json, &s, &link), 0);
        assert_null(find(s, "edge2"));
        /* Its modules go with it (their device is not in scope)... */
        assert_null(find(s, "edge2/$edgeHub"));
        /* ...while our own modules stay, even without the edge device listed. */
        assert_non_null(find(s, "edge1/$edgeAgent"));
        assert_non_null(find(s, "d1"));
        assert_int_equal(s->n_items, 2);
}

static void test_non_sas_and_missing_keys_skipped(void **state) {
        _cleanup_(scope_freep) Scope *s = NULL;
        _cleanup_free_ char *link = NULL;
        const char *json =
                "{\"devices\":["
                "{\"deviceId\":\"x509\",\"status\":\"enabled\",\"authentication\":{\"type\":\"selfSigned\","
                " \"x509Thumbprint\":{\"primaryThumbprint\":\"AB\",\"secondaryThumbprint\":\"CD\"}}},"
                "{\"deviceId\":\"ca\",\"status\":\"enabled\",\"authentication\":{\"type\":\"certificateAuthority\"}},"
                "{\"deviceId\":\"nokeys\",\"status\":\"enabled\",\"authentication\":{\"type\":\"sas\",\"symmetricKey\":null}},"
                "{\"deviceId\":\"emptykeys\",\"status\":\"enabled\",\"authentication\":{\"type\":\"sas\","
                " \"symmetricKey\":{\"primaryKey\":\"\",\"secondaryKey\":null}}},"
                "{\"deviceId\":\"noauth\",\"status\":\"enabled\"},"
                "{\"deviceId\":\"secondaryonly\",\"status\":\"enabled\",\"authentication\":{\"type\":\"sas\","
                " \"symmetricKey\":{\"primaryKey\":null,\"secondaryKey\":\"cw==\"}}},"
                "{\"deviceId\":\"bad id!#\",\"status\":\"enabled\",\"authentication\":{\"type\":\"sas\","
                " \"symmetricKey\":{\"primaryKey\":\"cw==\"}}}],"
                "\"modules\":[{\"deviceId\":\"secondaryonly\",\"moduleId\":\"none\",\"authentication\":{\"type\":\"none\"}}]}";

        assert_int_equal(parse(json, &s, &link), 0);
        /* "x509": thumbprints that are not SHA-1/SHA-256 hex; "ca" needs nothing from the scope. */
        assert_int_equal(s->n_items, 2);
        const Identity *id = find(s, "secondaryonly");
        assert_non_null(id);
        assert_null(id->primary_key);
        assert_string_equal(identity_key(id), "cw==");
        assert_int_equal(id->auth, IDENTITY_AUTH_SAS);
        id = find(s, "ca");
        assert_non_null(id);
        assert_int_equal(id->auth, IDENTITY_AUTH_CA);
        assert_null(identity_key(id));
        assert_null(find(s, "x509"));
}

static void test_self_signed_thumbprints(void **state) {
        _cleanup_(scope_freep) Scope *s = NULL;
        _cleanup_free_ char *link = NULL;
        const char *json =
                "{\"devices\":["
                "{\"deviceId\":\"sha1\",\"status\":\"enabled\",\"authentication\":{\"type\":\"selfSigned\","
                " \"symmetricKey\":{\"primaryKey\":null,\"secondaryKey\":null},"
                " \"x509Thumbprint\":{\"primaryThumbprint\":\"0123456789ABCDEF0123456789abcdef01234567\","
                " \"secondaryThumbprint\":null}}},"
                "{\"deviceId\":\"sha256\",\"status\":\"disabled\",\"authentication\":{\"type\":\"selfSigned\","
                " \"x509Thumbprint\":{\"primaryThumbprint\":\"\",\"secondaryThumbprint\":"
                "\"00112233445566778899AABBCCDDEEFF00112233445566778899AABBCCDDEEFF\"}}},"
                "{\"deviceId\":\"none\",\"status\":\"enabled\",\"authentication\":{\"type\":\"selfSigned\","
                " \"x509Thumbprint\":{\"primaryThumbprint\":null,\"secondaryThumbprint\":null}}},"
                "{\"deviceId\":\"nothex\",\"status\":\"enabled\",\"authentication\":{\"type\":\"selfSigned\","
                " \"x509Thumbprint\":{\"primaryThumbprint\":\"0123456789ABCDEF0123456789abcdef0123456g\"}}}]}";

        assert_int_equal(parse(json, &s, &link), 0);
        assert_int_equal(s->n_items, 2);
        const Identity *id = find(s, "sha1");
        assert_non_null(id);
        assert_int_equal(id->auth, IDENTITY_AUTH_SELF_SIGNED);
        assert_string_equal(id->primary_thumbprint, "0123456789abcdef0123456789abcdef01234567");
        assert_null(id->secondary_thumbprint);
        assert_null(identity_key(id));
        id = find(s, "sha256");
        assert_non_null(id);
        assert_false(id->enabled);
        assert_null(id->primary_thumbprint);
        assert_string_equal(id->secondary_thumbprint,
                            "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff");
}

static void test_duplicates_first_wins(void **state) {
        _cleanup_(scope_freep) Scope *s = NULL;
        _cleanup_free_ char *link = NULL;
        const char *json =
                "{\"devices\":["
                "{\"deviceId\":\"d1\",\"status\":\"enabled\",\"authentication\":{\"type\":\"sas\",\"symmetricKey\":{\"primaryKey\":\"Zmlyc3Q=\"}}},"
                "{\"deviceId\":\"d1\",\"status\":\"disabled\",\"authentication\":{\"type\":\"sas\",\"symmetricKey\":{\"primaryKey\":\"c2Vjb25k\"}}}]}";

        assert_int_equal(parse(json, &s, &link), 0);
        assert_int_equal(scope_finalize(s, EDGE), 1);
        assert_int_equal(s->n_items, 1);
        assert_string_equal(scope_find(s, "d1")->primary_key, "Zmlyc3Q=");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good_page),
                cmocka_unit_test(test_continuation),
                cmocka_unit_test(test_bad_continuation),
                cmocka_unit_test(test_extra_fields),
                cmocka_unit_test(test_missing_arrays),
                cmocka_unit_test(test_wrong_types),
                cmocka_unit_test(test_edge_as_child_rejected),
                cmocka_unit_test(test_non_sas_and_missing_keys_skipped),
                cmocka_unit_test(test_self_signed_thumbprints),
                cmocka_unit_test(test_duplicates_first_wins),
        };

        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
