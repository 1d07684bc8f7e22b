/* hubctl's views: given daemon replies, the exact text and merged JSON */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "hubctl/hubctl-format.h"
#include "hubctl/hubctl-render.h"
#include "proto/util/cleanup.h"

#define NOW_MS UINT64_C(1714564800000) /* 2024-05-01 12:00:00 UTC */

static const char HUB_STORE_STATUS[] =
        "{\"uplink\":\"down\",\"links_up\":0,\"links_total\":2,\"offline_since_ms\":1714564608000,"
        "\"offline_count\":3,\"connected_devices\":4,\"store\":{\"messages\":120,\"bytes\":1572864,"
        "\"max_bytes\":1073741824,\"disk_bytes\":4194304,\"overflow\":\"drop_oldest\",\"ttl_sec\":7200,"
        "\"dir\":\"/var/lib/edgehub/messages\",\"moving_to\":\"/mnt/sd/messages\"}}";
static const char AUTH_CACHE_STATUS[] =
        "{\"synced\":true,\"last_sync_ms\":1714561200000,\"last_attempt_ms\":1714564500000,"
        "\"last_error\":\"HTTP 503\",\"identities\":12,\"syncing\":false}";
static const char QUEUES[] =
        "{\"queues\":["
        "{\"endpoint\":\"$upstream\",\"priority\":0,\"messages\":120,\"bytes\":1572864,\"oldest_age_sec\":192.5,"
        "\"received\":500,\"delivered\":380,\"expired\":0,\"dropped\":0,\"rejected\":0},"
        "{\"endpoint\":\"$upstream\",\"priority\":1,\"messages\":0,\"bytes\":0,\"oldest_age_sec\":null,"
        "\"received\":7,\"delivered\":7,\"expired\":0,\"dropped\":0,\"rejected\":0}]}";
static const char AUTH_DEVICES[] =
        "{\"identities\":["
        "{\"identity\":\"sensor-1\",\"device_id\":\"sensor-1\",\"module_id\":null,\"status\":\"enabled\",\"edge\":false,"
        "\"auth\":\"selfSigned\"},"
        "{\"identity\":\"edge1/$edgeHub\",\"device_id\":\"edge1\",\"module_id\":\"$edgeHub\",\"status\":\"enabled\","
        "\"edge\":true,\"auth\":\"sas\"},"
        "{\"identity\":\"old-2\",\"device_id\":\"old-2\",\"module_id\":null,\"status\":\"disabled\",\"edge\":false}]}";
static const char STORE_DEVICES[] =
        "{\"devices\":["
        "{\"identity\":\"sensor-1\",\"connected\":true,\"link\":\"up\",\"queued\":3,\"delivered\":40},"
        "{\"identity\":\"ghost\",\"connected\":false,\"link\":\"backoff\",\"queued\":5,\"delivered\":0}]}";

static json_t *load(const char *s) {
        json_error_t e;
        json_t *j = json_loadb(s, strlen(s), JSON_REJECT_DUPLICATES, &e);

        if (!j)
                fail_msg("test JSON does not parse: %s", e.text);
        return j;
}

/* Output of a render call as a string. */
typedef struct Capture {
        char *text;
        size_t size;
        FILE *f;
} Capture;

static FILE *capture_open(Capture *c) {
        *c = (Capture){};
        c->f = open_memstream(&c->text, &c->size);
        assert_non_null(c->f);
        return c->f;
}

static char *capture_close(Capture *c) {
        assert_int_equal(fclose(c->f), 0);
        return c->text;
}

static void test_format(void **state) {
        static const struct {
                uint64_t bytes;
                const char *text;
        } bytes[] = {
                { 0, "0 B" },           { 1023, "1023 B" },        { 1024, "1.0 KiB" },
                { 1536, "1.5 KiB" },    { 1048575, "1.0 MiB" },    { 1572864, "1.5 MiB" },
                { 1073741824, "1.0 GiB" },
        };
        static const struct {
                uint64_t sec;
                const char *text;
        } durations[] = {
                { 0, "0s" },       { 59, "59s" },     { 60, "1m00s" },   { 192, "3m12s" },
                { 3600, "1h00m" }, { 7500, "2h05m" }, { 86400, "1d00h" }, { 97200, "1d03h" },
        };
        char b[FORMAT_BYTES_MAX], d[FORMAT_DURATION_MAX], t[FORMAT_TIMESTAMP_MAX];

        for (size_t i = 0; i < ELEMENTSOF(bytes); i++)
                assert_string_equal(format_bytes(b, bytes[i].bytes), bytes[i].text);
        for (size_t i = 0; i < ELEMENTSOF(durations); i++)
                assert_string_equal(format_duration(d, durations[i].sec), durations[i].text);
        assert_string_equal(format_timestamp(t, NOW_MS), "2024-05-01 12:00:00 UTC");
}

static void test_status_both(void **state) {
        _cleanup_free_ char *text = NULL;
        json_t *hs = load(HUB_STORE_STATUS), *ac = load(AUTH_CACHE_STATUS);
        json_error_t e;
        Capture c;

        assert_int_equal(render_status(capture_open(&c), hs, ac, NOW_MS, &e), 0);
        text = capture_close(&c);
        assert_string_equal(text,
                            "Uplink:             down, 0 of 2 links up\n"
                            "Offline since:      2024-05-01 11:56:48 UTC (for 3m12s)\n"
                            "Outages:            3\n"
                            "Connected devices:  4\n"
                            "Store:              120 messages, 1.5 MiB of 1.0 GiB (0.1%), 4.0 MiB on disk\n"
                            "Store policy:       drop_oldest when full, messages expire after 2h00m\n"
                            "Store folder:       /var/lib/edgehub/messages (moving to /mnt/sd/messages)\n"
                            "Scope:              12 identities, synced 2024-05-01 11:00:00 UTC (1h00m ago)\n"
                            "Last sync attempt:  2024-05-01 11:55:00 UTC (5m00s ago) failed: 'HTTP 503'\n");
        json_decref(hs);
        json_decref(ac);
}

static void test_status_one_side(void **state) {
        _cleanup_free_ char *up = NULL, *scope = NULL;
        json_t *hs = load("{\"uplink\":\"up\",\"links_up\":2,\"links_total\":2,\"offline_since_ms\":null,"
                          "\"offline_count\":0,\"connected_devices\":0,\"store\":{\"messages\":0,\"bytes\":0,"
                          "\"max_bytes\":0,\"disk_bytes\":512,\"overflow\":\"reject_new\",\"ttl_sec\":60}}");
        json_t *ac = load("{\"synced\":false,\"last_sync_ms\":null,\"last_attempt_ms\":null,\"last_error\":null,"
                          "\"identities\":0,\"syncing\":true}");
        json_error_t e;
        Capture c;

        assert_int_equal(render_status(capture_open(&c), hs, NULL, NOW_MS, &e), 0);
        up = capture_close(&c);
        assert_string_equal(up,
                            "Uplink:             up, 2 of 2 links up\n"
                            "Outages:            0\n"
                            "Connected devices:  0\n"
                            "Store:              0 messages, 0 B, 512 B on disk\n"
                            "Store policy:       reject_new when full, messages expire after 1m00s\n");

        assert_int_equal(render_status(capture_open(&c), NULL, ac, NOW_MS, &e), 0);
        scope = capture_close(&c);
        assert_string_equal(scope, "Scope:  0 identities, never synced, sync running\n");
        json_decref(hs);
        json_decref(ac);
}

static void test_status_bad(void **state) {
        static const char *const bad_hub_store[] = {
                "{}",
                "[]",
                "{\"uplink\":\"up\",\"links_up\":\"2\",\"links_total\":2,\"offline_since_ms\":null,"
                "\"offline_count\":0,\"connected_devices\":0,\"store\":{\"messages\":0,\"bytes\":0,"
                "\"max_bytes\":0,\"disk_bytes\":0,\"overflow\":\"drop_oldest\",\"ttl_sec\":60}}",
                "{\"uplink\":\"up\",\"links_up\":2,\"links_total\":2,\"offline_since_ms\":\"yesterday\","
                "\"offline_count\":0,\"connected_devices\":0,\"store\":{\"messages\":0,\"bytes\":0,"
                "\"max_bytes\":0,\"disk_bytes\":0,\"overflow\":\"drop_oldest\",\"ttl_sec\":60}}",
                "{\"uplink\":\"up\",\"links_up\":2,\"links_total\":2,\"offline_since_ms\":null,"
                "\"offline_count\":0,\"connected_devices\":-1,\"store\":{\"messages\":0,\"bytes\":0,"
                "\"max_bytes\":0,\"disk_bytes\":0,\"overflow\":\"drop_oldest\",\"ttl_sec\":60}}",
                ("{\"uplink\":\"up\",\"links_up\":2,\"links_total\":2,\"offline_since_ms\":null,"
                "\"offline_count\":0,\"connected_devices\":0,\"store\":[]}"),
        };
        static const char *const bad_auth_cache[] = {
                "{\"synced\":1,\"last_sync_ms\":null,\"last_attempt_ms\":null,\"last_error\":null,"
                "\"identities\":0,\"syncing\":false}",
                "{\"synced\":true,\"last_sync_ms\":null,\"last_attempt_ms\":null,\"last_error\":42,"
                "\"identities\":0,\"syncing\":false}",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad_hub_store); i++) {
                json_t *j = load(bad_hub_store[i]);
                json_error_t e = {};
                assert_int_equal(render_status(NULL, j, NULL, NOW_MS, &e), -EBADMSG);
                assert_true(e.text[0] != '\0');
                json_decref(j);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad_auth_cache); i++) {
                json_t *j = load(bad_auth_cache[i]);
                json_error_t e = {};
                assert_int_equal(render_status(NULL, NULL, j, NOW_MS, &e), -EBADMSG);
                assert_true(e.text[0] != '\0');
                json_decref(j);
        }
}

static void test_queues(void **state) {
        _cleanup_free_ char *text = NULL, *empty = NULL;
        json_t *q = load(QUEUES), *none = load("{\"queues\":[]}"), *bad = load("{\"queues\":{}}");
        json_error_t e;
        Capture c;

        assert_int_equal(render_queues(capture_open(&c), q, &e), 0);
        text = capture_close(&c);
        assert_string_equal(text,
                            "ENDPOINT   PRIO  MESSAGES    BYTES  OLDEST  RECEIVED  DELIVERED  EXPIRED  DROPPED  REJECTED\n"
                            "$upstream     0       120  1.5 MiB   3m12s       500        380        0        0         0\n"
                            "$upstream     1         0      0 B       -         7          7        0        0         0\n");

        assert_int_equal(render_queues(capture_open(&c), none, &e), 0);
        empty = capture_close(&c);
        assert_string_equal(empty,
                            "ENDPOINT  PRIO  MESSAGES  BYTES  OLDEST  RECEIVED  DELIVERED  EXPIRED  DROPPED  REJECTED\n");

        assert_int_equal(render_queues(NULL, bad, &e), -EBADMSG);
        json_decref(q);
        json_decref(none);
        json_decref(bad);
}

static void test_devices_merge(void **state) {
        _cleanup_free_ char *text = NULL, *dump = NULL;
        json_t *auth = load(AUTH_DEVICES), *store = load(STORE_DEVICES), *merged = NULL;
        json_error_t e;
        Capture c;

        assert_int_equal(devices_merge(store, auth, &merged, &e), 0);
        dump = json_dumps(json_array_get(json_object_get(merged, "devices"), 1), JSON_SORT_KEYS | JSON_COMPACT);
        assert_string_equal(dump,
                            "{\"auth\":null,\"connected\":false,\"delivered\":0,\"device_id\":\"ghost\",\"edge\":false,"
                            "\"identity\":\"ghost\",\"in_scope\":false,\"link\":\"backoff\",\"module_id\":null,"
                            "\"queued\":5,\"status\":null}");

        assert_int_equal(render_devices(capture_open(&c), merged, &e), 0);
        text = capture_close(&c);
        assert_string_equal(text,
                            "IDENTITY        STATUS          AUTH        CONNECTED  LINK     QUEUED  DELIVERED\n"
                            "edge1/$edgeHub  enabled (edge)  sas         no         -             0          0\n"
                            "ghost           not in scope    -           no         backoff       5          0\n"
                            "old-2           disabled        ?           no         -             0          0\n"
                            "sensor-1        enabled         selfSigned  yes        up            3         40\n");
        json_decref(merged);
        json_decref(auth);
        json_decref(store);
}

static void test_devices_one_side(void **state) {
        _cleanup_free_ char *scope_only = NULL, *store_only = NULL, *dump = NULL;
        json_t *auth = load(AUTH_DEVICES), *store = load(STORE_DEVICES), *merged = NULL;
        json_error_t e;
        Capture c;

        /* hub-store down: what it would know is unknown, not "no". */
        assert_int_equal(devices_merge(NULL, auth, &merged, &e), 0);
        dump = json_dumps(json_array_get(json_object_get(merged, "devices"), 2), JSON_SORT_KEYS | JSON_COMPACT);
        assert_string_equal(dump,
                            "{\"auth\":\"selfSigned\",\"connected\":null,\"delivered\":null,\"device_id\":\"sensor-1\","
                            "\"edge\":false,\"identity\":\"sensor-1\",\"in_scope\":true,\"link\":null,\"module_id\":null,"
                            "\"queued\":null,\"status\":\"enabled\"}");
        assert_int_equal(render_devices(capture_open(&c), merged, &e), 0);
        scope_only = capture_close(&c);
        assert_string_equal(scope_only,
                            "IDENTITY        STATUS          AUTH        CONNECTED  LINK  QUEUED  DELIVERED\n"
                            "edge1/$edgeHub  enabled (edge)  sas         ?          ?          ?          ?\n"
                            "old-2           disabled        ?           ?          ?          ?          ?\n"
                            "sensor-1        enabled         selfSigned  ?          ?          ?          ?\n");
        json_decref(merged);

        assert_int_equal(devices_merge(store, NULL, &merged, &e), 0);
        assert_int_equal(render_devices(capture_open(&c), merged, &e), 0);
        store_only = capture_close(&c);
        assert_string_equal(store_only,
                            "IDENTITY  STATUS  AUTH  CONNECTED  LINK     QUEUED  DELIVERED\n"
                            "ghost     ?       ?     no         backoff       5          0\n"
                            "sensor-1  ?       ?     yes        up            3         40\n");
        json_decref(merged);
        json_decref(auth);
        json_decref(store);
}

static void test_devices_bad(void **state) {
        static const char *const bad_store[] = {
                "{\"devices\":null}",
                "{\"devices\":[{\"identity\":\"a\",\"connected\":\"yes\",\"link\":\"up\",\"queued\":0,\"delivered\":0}]}",
                "{\"devices\":[{\"identity\":7,\"connected\":true,\"link\":\"up\",\"queued\":0,\"delivered\":0}]}",
                "{\"devices\":[17]}",
        };
        static const char *const bad_auth[] = {
                "{\"identities\":[{\"identity\":\"a\",\"device_id\":null,\"module_id\":null,\"status\":\"enabled\","
                "\"edge\":false}]}",
                "{\"identities\":[{\"identity\":\"a\",\"device_id\":\"a\",\"module_id\":null,\"status\":1,"
                "\"edge\":false}]}",
                "{\"devices\":[]}",
        };
        json_t *merged = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad_store); i++) {
                json_t *j = load(bad_store[i]);
                json_error_t e = {};
                assert_int_equal(devices_merge(j, NULL, &merged, &e), -EBADMSG);
                assert_true(e.text[0] != '\0');
                json_decref(j);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad_auth); i++) {
                json_t *j = load(bad_auth[i]);
                json_error_t e = {};
                assert_int_equal(devices_merge(NULL, j, &merged, &e), -EBADMSG);
                assert_true(e.text[0] != '\0');
                json_decref(j);
        }
}

static void test_sync(void **state) {
        _cleanup_free_ char *started = NULL, *running = NULL;
        json_t *yes = load("{\"started\":true}"), *no = load("{\"started\":false}"), *bad = load("{}");
        json_error_t e;
        Capture c;

        assert_int_equal(render_sync(capture_open(&c), yes, &e), 0);
        started = capture_close(&c);
        assert_string_equal(started, "Scope sync started.\n");
        assert_int_equal(render_sync(capture_open(&c), no, &e), 0);
        running = capture_close(&c);
        assert_string_equal(running, "A scope sync is already running.\n");
        assert_int_equal(render_sync(NULL, bad, &e), -EBADMSG);
        json_decref(yes);
        json_decref(no);
        json_decref(bad);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_status_both),
                cmocka_unit_test(test_status_one_side),
                cmocka_unit_test(test_status_bad),
                cmocka_unit_test(test_queues),
                cmocka_unit_test(test_devices_merge),
                cmocka_unit_test(test_devices_one_side),
                cmocka_unit_test(test_devices_bad),
                cmocka_unit_test(test_sync),
        };

        /* Timestamps are local time: pin the zone. */
        setenv("TZ", "UTC", 1);
        tzset();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
