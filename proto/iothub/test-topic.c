/* Unit tests: device telemetry topics and property bags */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/iothub/device-topic.h"
#include "proto/iothub/property-bag.h"
#include "proto/util/cleanup.h"

static void test_topic_parse(void **state) {
        static const struct {
                const char *topic;
                int expect;
                TopicKind kind;
                const char *device, *module, *bag;
        } cases[] = {
                { "devices/dev-1/messages/events/", 0, TOPIC_TELEMETRY, "dev-1", NULL, "" },
                { "devices/dev-1/messages/events/a=1&b=2", 0, TOPIC_TELEMETRY, "dev-1", NULL, "a=1&b=2" },
                { "devices/dev-1/messages/events/a=1&b=2/", 0, TOPIC_TELEMETRY, "dev-1", NULL, "a=1&b=2" },
                { "devices/dev-1/messages/events/%24.mid=x&%24.ct=application%2Fjson", 0, TOPIC_TELEMETRY, "dev-1", NULL,
                  "%24.mid=x&%24.ct=application%2Fjson" },
                { "devices/dev-1/messages/events/$.mid=1/", 0, TOPIC_TELEMETRY, "dev-1", NULL, "$.mid=1" },
                { "devices/dev-1/messages/events//", 0, TOPIC_TELEMETRY, "dev-1", NULL, "" },
                { "devices/dev-1/messages/events/a=1//", 0, TOPIC_TELEMETRY, "dev-1", NULL, "a=1/" },
                { "devices/dev-1/modules/$edgeHub/messages/events/", 0, TOPIC_MODULE_OUTPUT, "dev-1", "$edgeHub", "" },
                { "devices/d/modules/m.1/messages/events/%24.on=out1", 0, TOPIC_MODULE_OUTPUT, "d", "m.1", "%24.on=out1" },
                { "devices/d/modules/m/messages/events/%24.on=out1/", 0, TOPIC_MODULE_OUTPUT, "d", "m", "%24.on=out1" },
                /* A device called "modules" is still a device. */
                { "devices/modules/messages/events/", 0, TOPIC_TELEMETRY, "modules", NULL, "" },
                { "devices/dev-1/messages/events", -EINVAL },
                { "devices/dev-1/messages/", -EINVAL },
                { "devices/dev-1/messages/devicebound/", -EINVAL },
                { "devices/dev-1/modules/m/inputs/in1/", -EINVAL },
                { "devices//messages/events/", -EINVAL },
                { "devices/dev 1/messages/events/", -EINVAL },
                { "devices/d/modules//messages/events/", -EINVAL },
                { "devices/d/modules/m/x/messages/events/", -EINVAL },
                { "devices/d/modules/m+/messages/events/", -EINVAL },
                { "Devices/d/messages/events/", -EINVAL },
                { "/devices/d/messages/events/", -EINVAL },
                { "$iothub/twin/GET/?$rid=1", -EINVAL },
                { "devices/d", -EINVAL },
                { "devices/", -EINVAL },
                { "", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                DeviceTopic t = DEVICE_TOPIC_NULL;
                int r = device_topic_parse(cases[i].topic, &t);
                if (r != cases[i].expect)
                        fail_msg("topic '%s': got %d, want %d", cases[i].topic, r, cases[i].expect);
                if (r < 0) {
                        assert_int_equal(t.kind, _TOPIC_KIND_INVALID);
                        assert_null(t.device_id);
                        continue;
                }
                assert_int_equal(t.kind, cases[i].kind);
                assert_string_equal(t.device_id, cases[i].device);
                if (cases[i].module)
                        assert_string_equal(t.module_id, cases[i].module);
                else
                        assert_null(t.module_id);
                assert_string_equal(t.bag, cases[i].bag);
                device_topic_deinit(&t);
                assert_null(t.bag);
        }

        /* An over-long device id. */
        char topic[512];
        snprintf(topic, sizeof(topic), "devices/%0129d/messages/events/", 0);
        DeviceTopic t = DEVICE_TOPIC_NULL;
        assert_int_equal(device_topic_parse(topic, &t), -EINVAL);
}

typedef struct Kv {
        const char *key, *value;
} Kv;

static void test_bag_parse(void **state) {
        static const struct {
                const char *bag;
                int expect;
                size_t n;
                Kv kv[4];
        } cases[] = {
                { "", 0, 0 },
                { "a=1", 0, 1, { { "a", "1" } } },
                { "a=1&b=2", 0, 2, { { "a", "1" }, { "b", "2" } } },
                { "flag", 0, 1, { { "flag", "" } } },
                { "k=", 0, 1, { { "k", "" } } },
                { "k==v", 0, 1, { { "k", "=v" } } },
                { "%24.mid=m%201&%24.ct=application%2Fjson&%24.ce=utf-8", 0, 3,
                  { { "$.mid", "m 1" }, { "$.ct", "application/json" }, { "$.ce", "utf-8" } } },
                { "$.mid=abc&x+y=a+b", 0, 2, { { "$.mid", "abc" }, { "x+y", "a+b" } } },
                { "a=1&&b=2&", 0, 2, { { "a", "1" }, { "b", "2" } } },
                { "&", 0, 0 },
                { "k=%E2%82%AC", 0, 1, { { "k", "\xe2\x82\xac" } } },
                { "a=1&a=2", 0, 2, { { "a", "1" }, { "a", "2" } } },
                { "=v", -EINVAL },
                { "a=1&=v", -EINVAL },
                { "a=%", -EINVAL },
                { "a=%2", -EINVAL },
                { "%zz=1", -EINVAL },
                { "a=%00", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                PropertyBag b = { .n = 7 };
                int r = property_bag_parse(cases[i].bag, strlen(cases[i].bag), &b);
                if (r != cases[i].expect)
                        fail_msg("bag '%s': got %d, want %d", cases[i].bag, r, cases[i].expect);
                if (r < 0) {
                        assert_int_equal(b.n, 7); /* untouched */
                        continue;
                }
                assert_int_equal(b.n, cases[i].n);
                for (size_t j = 0; j < b.n; j++) {
                        assert_string_equal(b.entries[j].key, cases[i].kv[j].key);
                        assert_string_equal(b.entries[j].value, cases[i].kv[j].value);
                }
                property_bag_deinit(&b);
                assert_int_equal(b.n, 0);
        }
}

static void test_bag_limits(void **state) {
        PropertyBag b = {};
        char buf[PROPERTY_BAG_MAX + 2];
        size_t n = 0;

        /* Exactly the maximum number of entries, then one more. */
        for (unsigned i = 0; i < PROPERTY_BAG_ENTRIES_MAX; i++)
                n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%sk%u=v", i ? "&" : "", i);
        assert_int_equal(property_bag_parse(buf, n, &b), 0);
        assert_int_equal(b.n, PROPERTY_BAG_ENTRIES_MAX);
        assert_string_equal(property_bag_get(&b, "k63"), "v");
        property_bag_deinit(&b);
        n += (size_t) snprintf(buf + n, sizeof(buf) - n, "&x=y");
        assert_int_equal(property_bag_parse(buf, n, &b), -E2BIG);

        /* Exactly the maximum size, then one byte more. */
        memset(buf, 'a', sizeof(buf));
        buf[0] = 'k';
        buf[1] = '=';
        assert_int_equal(property_bag_parse(buf, PROPERTY_BAG_MAX, &b), 0);
        assert_int_equal(strlen(b.entries[0].value), PROPERTY_BAG_MAX - 2);
        property_bag_deinit(&b);
        assert_int_equal(property_bag_parse(buf, PROPERTY_BAG_MAX + 1, &b), -E2BIG);

        /* The length counts, not a NUL; a raw NUL is not a property. */
        assert_int_equal(property_bag_parse("a=1&b=2", 3, &b), 0);
        assert_int_equal(b.n, 1);
        property_bag_deinit(&b);
        assert_int_equal(property_bag_parse("a=\0", 3, &b), -EINVAL);
}

static void test_bag_get(void **state) {
        PropertyBag b = {};

        assert_int_equal(property_bag_parse("%24.mid=1&a=x&a=y&e", 19, &b), 0);
        assert_string_equal(property_bag_get(&b, "$.mid"), "1");
        assert_string_equal(property_bag_get(&b, "a"), "x"); /* the first wins */
        assert_string_equal(property_bag_get(&b, "e"), "");
        assert_null(property_bag_get(&b, "%24.mid"));
        assert_null(property_bag_get(&b, "A"));
        assert_null(property_bag_get(&b, NULL));
        assert_null(property_bag_get(NULL, "a"));
        property_bag_deinit(&b);
}

static void test_bag_format(void **state) {
        static const struct {
                const char *in, *canonical;
        } cases[] = {
                { "", "" },
                { "a=1", "a=1" },
                { "flag", "flag=" },
                { "$.mid=1&$.ct=application/json", "%24.mid=1&%24.ct=application%2Fjson" },
                { "a=1&&b=2&", "a=1&b=2" },
                { "k=a+b%20c", "k=a%2Bb%20c" },
                { "k%3d=v%26w", "k%3D=v%26w" },
                { "k=%e2%82%ac", "k=%E2%82%AC" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                PropertyBag b = {}, b2 = {};
                _cleanup_free_ char *s = NULL, *s2 = NULL;

                assert_int_equal(property_bag_parse(cases[i].in, strlen(cases[i].in), &b), 0);
                assert_int_equal(property_bag_format(&b, &s), 0);
                assert_string_equal(s, cases[i].canonical);
                /* parse(format(b)) == b, and the canonical form is a fixed point. */
                assert_int_equal(property_bag_parse(s, strlen(s), &b2), 0);
                assert_int_equal(b2.n, b.n);
                for (size_t j = 0; j < b.n; j++) {
                        assert_string_equal(b2.entries[j].key, b.entries[j].key);
                        assert_string_equal(b2.entries[j].value, b.entries[j].value);
                }
                assert_int_equal(property_bag_format(&b2, &s2), 0);
                assert_string_equal(s2, s);
                property_bag_deinit(&b);
                property_bag_deinit(&b2);
        }

        /* A bag built in memory. */
        PropertyBag b = { .n = 2 };
        b.entries[0] = (Property){ .key = (char *) "$.on", .value = (char *) "out 1" };
        b.entries[1] = (Property){ .key = (char *) "k&=", .value = (char *) "" };
        _cleanup_free_ char *s = NULL;
        assert_int_equal(property_bag_format(&b, &s), 0);
        assert_string_equal(s, "%24.on=out%201&k%26%3D=");

        b.entries[1].key = (char *) "";
        assert_int_equal(property_bag_format(&b, &s), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_topic_parse),
                cmocka_unit_test(test_bag_parse),
                cmocka_unit_test(test_bag_limits),
                cmocka_unit_test(test_bag_get),
                cmocka_unit_test(test_bag_format),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
