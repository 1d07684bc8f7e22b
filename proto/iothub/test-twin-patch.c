/* Unit tests: twin patch limits, merge-patch, diff, versions, twin topics */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/iothub/twin-patch.h"
#include "proto/iothub/twin-topic.h"
#include "proto/util/cleanup.h"


static json_t *J(const char *s) {
        json_error_t e;
        json_t *j = json_loads(s, 0, &e);
        if (!j)
                fail_msg("bad test JSON '%s': %s", s, e.text);
        return j;
}

static void assert_json_eq(const json_t *got, const char *want) {
        _cleanup_(json_decrefp) json_t *w = J(want);
        if (!json_equal(got, w)) {
                _cleanup_free_ char *g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
                fail_msg("got %s, want %s", g, want);
        }
}

/* A JSON document of n nested objects: {"a":{"a":...{"a":1}}} */
static char *nested(unsigned n, const char *open, const char *close) {
        size_t ol = strlen(open), cl = strlen(close);
        char *s = malloc(n * (ol + cl) + 16), *p = s;
        assert_non_null(s);
        p += sprintf(p, "{\"k\":");
        for (unsigned i = 0; i < n; i++)
                p += sprintf(p, "%s", open);
        p += sprintf(p, "1");
        for (unsigned i = 0; i < n; i++)
                p += sprintf(p, "%s", close);
        sprintf(p, "}");
        return s;
}

static void test_patch_parse(void **state) {
        static const struct {
                const char *in;
                int expect;
        } cases[] = {
                { "{}", 0 },
                { "{\"a\":1}", 0 },
                { "{\"a\":null}", 0 },
                { "{\"a\":{\"b\":null,\"c\":[1,\"x\",{\"d\":true}]}}", 0 },
                { "{\"temp\":21.5,\"on\":false,\"name\":\"x\"}", 0 },
                { "{\"é\":1}", 0 },
                { "{\"a-b_c:d\":1}", 0 },
                { "{\"a\":4503599627370495}", 0 },
                { "{\"a\":-4503599627370496}", 0 },
                { "", -EBADMSG },
                { "not json", -EBADMSG },
                { "[1,2]", -EBADMSG },
                { "\"s\"", -EBADMSG },
                { "null", -EBADMSG },
                { "{\"a\":1", -EBADMSG },
                { "{\"a\":1,\"a\":2}", -EBADMSG },
                { "{\"a\":1} x", -EBADMSG },
                { "{\"a\\u0000b\":1}", -EBADMSG },
                { "{\"a.b\":1}", -EINVAL },
                { "{\"$version\":1}", -EINVAL },
                { "{\"a b\":1}", -EINVAL },
                { "{\"\":1}", -EINVAL },
                { "{\"a\\tb\":1}", -EINVAL },
                { "{\"a\\u0085b\":1}", -EINVAL },
                { "{\"a\":{\"b.c\":1}}", -EINVAL },
                { "{\"a\":[{\"$x\":1}]}", -EINVAL },
                { "{\"a\":[null]}", -EINVAL },
                { "{\"a\":4503599627370496}", -EINVAL },
                { "{\"a\":-4503599627370497}", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_t *p = NULL;
                const char *why = NULL;
                int r = twin_patch_parse(cases[i].in, strlen(cases[i].in), &p, &why);
                if (r != cases[i].expect)
                        fail_msg("'%s': got %d, want %d", cases[i].in, r, cases[i].expect);
                if (r < 0) {
                        assert_null(p);
                        assert_non_null(why);
                } else
                        json_decref(p);
        }
}

static void test_patch_limits(void **state) {
        json_t *p = NULL;

        /* Ten levels of containers below the properties object are fine, eleven are not. */
        _cleanup_free_ char *ten = nested(10, "{\"a\":", "}");
        _cleanup_free_ char *eleven = nested(11, "{\"a\":", "}");
        _cleanup_free_ char *arrays = nested(11, "[", "]");
        assert_int_equal(twin_patch_parse(ten, strlen(ten), &p, NULL), 0);
        json_decref(p);
        assert_int_equal(twin_patch_parse(eleven, strlen(eleven), &p, NULL), -EINVAL);
        assert_int_equal(twin_patch_parse(arrays, strlen(arrays), &p, NULL), -EINVAL);

        /* Keys up to 1 KiB, strings up to 4 KiB. */
        char buf[8192];
        memset(buf, 0, sizeof(buf));
        snprintf(buf, sizeof(buf), "{\"%0*d\":1}", 1024, 0);
        assert_int_equal(twin_patch_parse(buf, strlen(buf), &p, NULL), 0);
        json_decref(p);
        snprintf(buf, sizeof(buf), "{\"%0*d\":1}", 1025, 0);
        assert_int_equal(twin_patch_parse(buf, strlen(buf), &p, NULL), -EINVAL);
        snprintf(buf, sizeof(buf), "{\"a\":\"%0*d\"}", 4096, 0);
        assert_int_equal(twin_patch_parse(buf, strlen(buf), &p, NULL), 0);
        json_decref(p);
        snprintf(buf, sizeof(buf), "{\"a\":\"%0*d\"}", 4097, 0);
        assert_int_equal(twin_patch_parse(buf, strlen(buf), &p, NULL), -EINVAL);

        /* The raw size cap comes before parsing. */
        size_t big = TWIN_PATCH_BYTES_MAX + 1;
        _cleanup_free_ char *huge = malloc(big);
        assert_non_null(huge);
        memset(huge, ' ', big);
        huge[0] = '{';
        huge[big - 1] = '}';
        assert_int_equal(twin_patch_parse(huge, big, &p, NULL), -E2BIG);
}

static void test_document_size(void **state) {
        _cleanup_(json_decrefp) json_t *d = J("{\"ab\":\"xyz\",\"n\":1,\"f\":1.5,\"b\":true,\"o\":{\"k\":\"é\"},"
                                              "\"arr\":[1,\"zz\"],\"$version\":7,\"$metadata\":{\"x\":\"yyyy\"}}");
        /* ab+xyz=5, n+8=9, f+8=9, b+4=5, o+(k+1)=3, arr+(8+2)=13; '$' keys not counted. */
        assert_int_equal(twin_document_size(d), 5 + 9 + 9 + 5 + 3 + 13);

        /* Size is counted in characters, not bytes, and controls do not count. */
        _cleanup_(json_decrefp) json_t *u = J("{\"k\":\"\\u00e9\\u00e9\\n\"}");
        assert_int_equal(twin_document_size(u), 1 + 2);
}

static void test_merge(void **state) {
        static const struct {
                const char *target, *patch, *want;
        } cases[] = {
                { "{}", "{}", "{}" },
                { "{\"a\":1}", "{\"b\":2}", "{\"a\":1,\"b\":2}" },
                { "{\"a\":1,\"b\":2}", "{\"a\":null}", "{\"b\":2}" },
                { "{\"a\":1}", "{\"x\":null}", "{\"a\":1}" },
                { "{\"a\":{\"b\":1,\"c\":2}}", "{\"a\":{\"b\":null,\"d\":3}}", "{\"a\":{\"c\":2,\"d\":3}}" },
                { "{\"a\":1}", "{\"a\":{\"b\":{\"c\":null,\"d\":1}}}", "{\"a\":{\"b\":{\"d\":1}}}" },
                { "{\"a\":{\"b\":1}}", "{\"a\":5}", "{\"a\":5}" },
                /* Arrays are values: replaced whole, never merged. */
                { "{\"a\":[1,2,3]}", "{\"a\":[4]}", "{\"a\":[4]}" },
                { "{\"a\":[{\"x\":1}]}", "{\"a\":[{\"y\":2}]}", "{\"a\":[{\"y\":2}]}" },
                { "{\"a\":{\"b\":{}}}", "{\"a\":{\"b\":{}}}", "{\"a\":{\"b\":{}}}" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(json_decrefp) json_t *t = J(cases[i].target);
                _cleanup_(json_decrefp) json_t *p = J(cases[i].patch);
                assert_int_equal(twin_merge(t, p), 0);
                assert_json_eq(t, cases[i].want);
        }

        _cleanup_(json_decrefp) json_t *t = J("{}");
        _cleanup_(json_decrefp) json_t *a = J("[1]");
        assert_int_equal(twin_merge(t, a), -EINVAL);
        assert_int_equal(twin_merge(a, t), -EINVAL);
}

static void test_compose(void **state) {
        static const struct {
                const char *first, *second, *want; /* want NULL: -EXDEV */
        } cases[] = {
                { "{}", "{}", "{}" },
                { "{\"a\":1}", "{\"b\":2}", "{\"a\":1,\"b\":2}" },
                { "{\"a\":1}", "{\"a\":null}", "{\"a\":null}" },           /* the deletion is kept */
                { "{\"a\":null}", "{\"a\":3}", "{\"a\":3}" },
                { "{\"a\":{\"b\":1}}", "{\"a\":{\"c\":null}}", "{\"a\":{\"b\":1,\"c\":null}}" },
                { "{\"a\":{\"b\":1}}", "{\"a\":7}", "{\"a\":7}" },
                { "{\"b\":1}", "{\"a\":{\"c\":null}}", "{\"b\":1,\"a\":{\"c\":null}}" },
                { "{\"a\":[1]}", "{\"a\":[2]}", "{\"a\":[2]}" },
                /* Not one merge patch: what was under "a" decides. */
                { "{\"a\":null}", "{\"a\":{\"b\":1}}", NULL },
                { "{\"a\":5}", "{\"a\":{\"b\":1}}", NULL },
                { "{\"x\":1,\"a\":{\"b\":null}}", "{\"a\":{\"b\":{\"c\":1}}}", NULL },
        };
        /* Documents the compositions are checked against: applying both == applying the composition. */
        static const char *const docs[] = {
                "{}", "{\"a\":1}", "{\"a\":{\"b\":2,\"c\":3,\"d\":4}}", "{\"b\":{\"x\":1},\"a\":[1]}",
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(json_decrefp) json_t *first = J(cases[i].first);
                _cleanup_(json_decrefp) json_t *second = J(cases[i].second);
                _cleanup_(json_decrefp) json_t *orig = json_deep_copy(first);

                if (!cases[i].want) {
                        assert_int_equal(twin_patch_compose(first, second), -EXDEV);
                        assert_true(json_equal(first, orig));
                        continue;
                }
                assert_int_equal(twin_patch_compose(first, second), 0);
                assert_json_eq(first, cases[i].want);
                for (size_t d = 0; d < ELEMENTSOF(docs); d++) {
                        _cleanup_(json_decrefp) json_t *stepwise = J(docs[d]);
                        _cleanup_(json_decrefp) json_t *at_once = J(docs[d]);
                        assert_int_equal(twin_merge(stepwise, orig), 0);
                        assert_int_equal(twin_merge(stepwise, second), 0);
                        assert_int_equal(twin_merge(at_once, first), 0);
                        assert_true(json_equal(stepwise, at_once));
                }
        }

        _cleanup_(json_decrefp) json_t *o = J("{}");
        _cleanup_(json_decrefp) json_t *a = J("[1]");
        assert_int_equal(twin_patch_compose(o, a), -EINVAL);
        assert_int_equal(twin_patch_compose(a, o), -EINVAL);
}

static void test_diff(void **state) {
        static const struct {
                const char *from, *to, *want;
        } cases[] = {
                { "{}", "{}", "{}" },
                { "{\"a\":1}", "{\"a\":1}", "{}" },
                { "{\"a\":1}", "{\"a\":2}", "{\"a\":2}" },
                { "{\"a\":1}", "{}", "{\"a\":null}" },
                { "{}", "{\"a\":{\"b\":1}}", "{\"a\":{\"b\":1}}" },
                { "{\"a\":{\"b\":1,\"c\":2}}", "{\"a\":{\"b\":1,\"c\":3}}", "{\"a\":{\"c\":3}}" },
                { "{\"a\":{\"b\":1,\"c\":2}}", "{\"a\":{\"b\":1}}", "{\"a\":{\"c\":null}}" },
                { "{\"a\":{\"b\":1}}", "{\"a\":7}", "{\"a\":7}" },
                { "{\"a\":7}", "{\"a\":{\"b\":1}}", "{\"a\":{\"b\":1}}" },
                { "{\"a\":[1,2]}", "{\"a\":[1,2]}", "{}" },
                { "{\"a\":[1,2]}", "{\"a\":[2,1]}", "{\"a\":[2,1]}" },
                { "{\"x\":1,\"y\":{\"z\":{\"w\":1}}}", "{\"y\":{\"z\":{}}}", "{\"x\":null,\"y\":{\"z\":{\"w\":null}}}" },
                { "{\"a\":1.0}", "{\"a\":1}", "{\"a\":1}" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(json_decrefp) json_t *from = J(cases[i].from);
                _cleanup_(json_decrefp) json_t *to = J(cases[i].to);
                _cleanup_(json_decrefp) json_t *d = twin_diff(from, to);
                assert_non_null(d);
                assert_json_eq(d, cases[i].want);
                /* Applying the diff yields the target. */
                assert_int_equal(twin_merge(from, d), 0);
                assert_true(json_equal(from, to));
        }

        _cleanup_(json_decrefp) json_t *o = J("{}");
        _cleanup_(json_decrefp) json_t *a = J("[]");
        assert_null(twin_diff(o, a));
}

static void test_cloud_properties(void **state) {
        json_t *p = NULL;
        int64_t v = -1;

        _cleanup_(json_decrefp) json_t *ok = J("{\"a\":1,\"$version\":4,\"$metadata\":{}}");
        assert_int_equal(twin_cloud_properties(ok, &p, &v), 0);
        assert_int_equal(v, 4);
        assert_json_eq(p, "{\"a\":1}");
        json_decref(p);

        static const char *const bad[] = {
                "{\"a\":1}", "{\"$version\":\"4\"}", "{\"$version\":-1}", "{\"$version\":1.5}", "[]",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(json_decrefp) json_t *b = J(bad[i]);
                p = NULL;
                assert_int_equal(twin_cloud_properties(b, &p, &v), -EBADMSG);
                assert_null(p);
        }
}

static void test_version_step(void **state) {
        assert_int_equal(twin_version_step(0, 1), TWIN_VERSION_NEXT);
        assert_int_equal(twin_version_step(4, 5), TWIN_VERSION_NEXT);
        assert_int_equal(twin_version_step(5, 5), TWIN_VERSION_STALE);
        assert_int_equal(twin_version_step(5, 2), TWIN_VERSION_STALE);
        assert_int_equal(twin_version_step(5, 7), TWIN_VERSION_GAP);
        assert_int_equal(twin_version_step(0, 3), TWIN_VERSION_GAP);
        assert_int_equal(twin_version_step(-1, 3), _TWIN_VERSION_STEP_INVALID);
}

static void test_topic_parse(void **state) {
        static const struct {
                const char *topic;
                int expect;
                TwinTopicKind kind;
                int status;
                const char *rid;
                int64_t version;
        } cases[] = {
                { "twin/GET/?$rid=7", 0, TWIN_TOPIC_GET, 0, "7", -1 },
                { "twin/GET/?$rid=5f1c-ab:2", 0, TWIN_TOPIC_GET, 0, "5f1c-ab:2", -1 },
                { "twin/GET/?", 0, TWIN_TOPIC_GET, 0, NULL, -1 },
                { "twin/GET/?foo=1", 0, TWIN_TOPIC_GET, 0, NULL, -1 },
                { "twin/GET/?%24rid=9", 0, TWIN_TOPIC_GET, 0, "9", -1 },
                { "twin/PATCH/properties/reported/?$rid=12", 0, TWIN_TOPIC_REPORTED, 0, "12", -1 },
                { "twin/res/200/?$rid=7", 0, TWIN_TOPIC_RESPONSE, 200, "7", -1 },
                { "twin/res/204/?$rid=7&$version=12", 0, TWIN_TOPIC_RESPONSE, 204, "7", 12 },
                { "twin/PATCH/properties/desired/?$version=3", 0, TWIN_TOPIC_DESIRED, 0, NULL, 3 },
                { "twin/PATCH/properties/desired/?$version=x", -EINVAL },
                { "twin/PATCH/properties/desired/?$version=-1", -EINVAL },
                { "twin/PATCH/properties/desired/?$version=99999999999999999999", -EINVAL },
                { "twin/PATCH/properties/desired/?", -EINVAL },
                { "twin/GET/?$rid=a&b", 0, TWIN_TOPIC_GET, 0, "a", -1 },
                { "twin/GET/?$rid=a%20b", -EBADMSG },
                { "twin/GET/?$rid=", -EBADMSG },
                { "twin/GET/?$rid=%zz", -EINVAL },
                { "twin/GET", -EINVAL },
                { "twin/GET/", 0, TWIN_TOPIC_GET, 0, NULL, -1 },
                { "twin/res/200/", 0, TWIN_TOPIC_RESPONSE, 200, NULL, -1 },
                { "twin/GET/x", -EINVAL },
                { "twin/GET/x?$rid=1", -EINVAL },
                { "twin/res/abc/?$rid=1", -EINVAL },
                { "twin/res/2000/?$rid=1", -EINVAL },
                { "twin/res/200?$rid=1", -EINVAL },
                { "twin/PATCH/properties/other/?$rid=1", -EINVAL },
                { "methods/POST/x/?$rid=1", -EINVAL },
                { "", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                TwinTopic t = TWIN_TOPIC_NULL;
                int r = twin_topic_parse(cases[i].topic, &t);
                if (r != cases[i].expect)
                        fail_msg("'%s': got %d, want %d", cases[i].topic, r, cases[i].expect);
                if (r < 0) {
                        assert_int_equal(t.kind, _TWIN_TOPIC_KIND_INVALID);
                        continue;
                }
                assert_int_equal(t.kind, cases[i].kind);
                assert_int_equal(t.status, cases[i].status);
                assert_int_equal(t.version, cases[i].version);
                if (cases[i].rid)
                        assert_string_equal(t.rid, cases[i].rid);
                else
                        assert_null(t.rid);
                twin_topic_deinit(&t);
        }
}

static void test_topic_format(void **state) {
        char *s = NULL;

        assert_int_equal(twin_topic_format_response(200, "7", -1, &s), 0);
        assert_string_equal(s, "$iothub/twin/res/200/?$rid=7");
        free(s);
        assert_int_equal(twin_topic_format_response(204, "ab-1", 42, &s), 0);
        assert_string_equal(s, "$iothub/twin/res/204/?$rid=ab-1&$version=42");
        free(s);
        assert_int_equal(twin_topic_format_desired(9, &s), 0);
        assert_string_equal(s, "$iothub/twin/PATCH/properties/desired/?$version=9");
        free(s);
        assert_int_equal(twin_topic_format_response(200, "a b", -1, &s), -EINVAL);
        assert_int_equal(twin_topic_format_response(200, NULL, -1, &s), -EINVAL);
        assert_int_equal(twin_topic_format_desired(-1, &s), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_patch_parse),
                cmocka_unit_test(test_patch_limits),
                cmocka_unit_test(test_document_size),
                cmocka_unit_test(test_merge),
                cmocka_unit_test(test_compose),
                cmocka_unit_test(test_diff),
                cmocka_unit_test(test_cloud_properties),
                cmocka_unit_test(test_version_step),
                cmocka_unit_test(test_topic_parse),
                cmocka_unit_test(test_topic_format),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
