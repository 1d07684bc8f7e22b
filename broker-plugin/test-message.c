/* Tests of message classification and the telemetry hand-off (the ingest log) before PUBACK */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <mqtt_protocol.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker-plugin/broker-api.h"
#include "broker-plugin/message.h"
#include "broker-plugin/plugin.h"
#include "broker-plugin/test-broker-stubs.h"
#include "broker-plugin/test-fake-daemon.h"
#include "proto/iothub/property-bag.h"
#include "proto/ipc/wire.h"
#include "proto/store/ingest-log.h"
#include "proto/util/cleanup.h"

#define SOCK "/run/edgehub/broker.sock"

static Client client_of(const char *client_id, const char *username, const char *address) {
        Client c;
        assert_int_equal(client_classify(address ? address : "192.0.2.1", SOCK,
                                         username ? username : "hub/x/?api-version=1", client_id, &c),
                         0);
        return c;
}

static MessageKind classify(const char *client_id, const char *topic, const void *payload, size_t len,
                            Message *ret) {
        const char *username = strncmp(client_id, "$edgehub/", 9) == 0 ? client_id : NULL;
        Client c = client_of(client_id, username, username ? SOCK : NULL);
        assert_int_equal(message_classify(&c, client_id, topic, payload, len, ret), 0);
        return ret->kind;
}

static void test_classify_telemetry(void **state) {
        _cleanup_(message_deinit) Message m = MESSAGE_NULL;

        assert_int_equal(classify("d", "devices/d/messages/events/", "x", 1, &m), MESSAGE_TELEMETRY);
        assert_string_equal(m.properties, "");
        assert_null(m.output);
        message_deinit(&m);

        /* The bag leaves in canonical form, in the sender's order. */
        assert_int_equal(classify("d", "devices/d/messages/events/b=2&a=1&$.ct=application/json&flag/", "x", 1, &m),
                         MESSAGE_TELEMETRY);
        assert_string_equal(m.properties, "b=2&a=1&%24.ct=application%2Fjson&flag=");
        assert_null(m.output);
        message_deinit(&m);

        assert_int_equal(classify("d", "devices/d/messages/events/%24.mid=1&k=a%20b", "", 0, &m),
                         MESSAGE_TELEMETRY);
        assert_string_equal(m.properties, "%24.mid=1&k=a%20b");
        message_deinit(&m);

        /* A device's $.on is just a property; only modules have outputs. */
        assert_int_equal(classify("d", "devices/d/messages/events/%24.on=o", "", 0, &m), MESSAGE_TELEMETRY);
        assert_null(m.output);
}

static void test_classify_module_output(void **state) {
        _cleanup_(message_deinit) Message m = MESSAGE_NULL;

        assert_int_equal(classify("d/m", "devices/d/modules/m/messages/events/%24.on=out1&k=v", "{}", 2, &m),
                         MESSAGE_TELEMETRY);
        assert_string_equal(m.properties, "%24.on=out1&k=v");
        assert_string_equal(m.output, "out1");
        message_deinit(&m);

        assert_int_equal(classify("d/m", "devices/d/modules/m/messages/events/", "{}", 2, &m), MESSAGE_TELEMETRY);
        assert_null(m.output);
        message_deinit(&m);

        assert_int_equal(classify("d/m", "devices/d/modules/m/messages/events/%24.on=", "{}", 2, &m),
                         MESSAGE_TELEMETRY);
        assert_null(m.output);
}

static void test_classify_foreign(void **state) {
        _cleanup_(message_deinit) Message m = MESSAGE_NULL;

        assert_int_equal(classify("d", "devices/e/messages/events/", "x", 1, &m), MESSAGE_FOREIGN);
        assert_int_equal(classify("d", "devices/d/modules/m/messages/events/", "x", 1, &m), MESSAGE_FOREIGN);
        assert_int_equal(classify("d/m", "devices/d/messages/events/", "x", 1, &m), MESSAGE_FOREIGN);
        assert_int_equal(classify("d/m", "devices/d/modules/n/messages/events/", "x", 1, &m), MESSAGE_FOREIGN);
        assert_int_equal(classify("d/m", "devices/e/modules/m/messages/events/", "x", 1, &m), MESSAGE_FOREIGN);
        assert_int_equal(classify("d", "devices/d/messages/devicebound/", "x", 1, &m), MESSAGE_FOREIGN);
        assert_int_equal(classify("d", "$edgehub/kick", "d", 1, &m), MESSAGE_FOREIGN);
        /* What the ACL admits under $iothub/ is a request for our daemons. */
        assert_int_equal(classify("d", "$iothub/twin/GET/?$rid=1", "", 0, &m), MESSAGE_REQUEST);
        assert_int_equal(classify("d", "devices/d/../e/messages/events/", "", 0, &m), MESSAGE_FOREIGN);
        assert_non_null(m.why);

        Client invalid = CLIENT_NULL;
        assert_int_equal(message_classify(&invalid, "x", "devices/x/messages/events/", "", 0, &m), 0);
        assert_int_equal(m.kind, MESSAGE_FOREIGN);
}

static void test_classify_oversize(void **state) {
        _cleanup_(message_deinit) Message m = MESSAGE_NULL;
        _cleanup_free_ char *big = calloc(1, MESSAGE_PAYLOAD_MAX + 1);
        assert_non_null(big);

        assert_int_equal(classify("d", "devices/d/messages/events/", big, MESSAGE_PAYLOAD_MAX, &m),
                         MESSAGE_TELEMETRY);
        message_deinit(&m);
        assert_int_equal(classify("d", "devices/d/messages/events/", big, MESSAGE_PAYLOAD_MAX + 1, &m),
                         MESSAGE_OVERSIZE);
        assert_int_equal(classify("d/m", "devices/d/modules/m/messages/events/", big, MESSAGE_PAYLOAD_MAX + 1, &m),
                         MESSAGE_OVERSIZE);
}

static void test_classify_bad_bag(void **state) {
        _cleanup_(message_deinit) Message m = MESSAGE_NULL;
        char topic[2048];

        assert_int_equal(classify("d", "devices/d/messages/events/a=%zz", "", 0, &m), MESSAGE_MALFORMED);
        assert_int_equal(classify("d", "devices/d/messages/events/=v", "", 0, &m), MESSAGE_MALFORMED);
        assert_int_equal(classify("d", "devices/d/messages/events/a=%00", "", 0, &m), MESSAGE_MALFORMED);
        assert_int_equal(classify("d/m", "devices/d/modules/m/messages/events/%2", "", 0, &m), MESSAGE_MALFORMED);

        /* Over the entry limit. */
        char *p = stpcpy(topic, "devices/d/messages/events/");
        for (unsigned i = 0; i <= PROPERTY_BAG_ENTRIES_MAX; i++)
                p += sprintf(p, "k%u=v&", i);
        assert_int_equal(classify("d", topic, "", 0, &m), MESSAGE_MALFORMED);
        assert_string_equal(m.why, "property bag too big");

        /* Over the byte limit. */
        _cleanup_free_ char *huge = malloc(PROPERTY_BAG_MAX + 64);
        assert_non_null(huge);
        p = stpcpy(huge, "devices/d/messages/events/k=");
        memset(p, 'v', PROPERTY_BAG_MAX);
        p[PROPERTY_BAG_MAX] = '\0';
        assert_int_equal(classify("d", huge, "", 0, &m), MESSAGE_MALFORMED);
}

static void test_classify_internal(void **state) {
        _cleanup_(message_deinit) Message m = MESSAGE_NULL;

        assert_int_equal(classify("$edgehub/auth-cache", "$edgehub/kick", "d/m", 3, &m), MESSAGE_KICK);
        assert_string_equal(m.target, "d/m");
        message_deinit(&m);

        assert_int_equal(classify("$edgehub/auth-cache", "$edgehub/kick", "", 0, &m), MESSAGE_MALFORMED);
        assert_int_equal(classify("$edgehub/auth-cache", "$edgehub/kick", "d\0e", 3, &m), MESSAGE_MALFORMED);
        assert_int_equal(classify("$edgehub/auth-cache", "$edgehub/kick", "$edgehub/auth-cache", 19, &m),
                         MESSAGE_MALFORMED);
        assert_int_equal(classify("$edgehub/hub-store", "$edgehub/presence-query", "", 0, &m), MESSAGE_PRESENCE_QUERY);
        assert_int_equal(classify("d", "$edgehub/presence-query", "", 0, &m), MESSAGE_FOREIGN);
        assert_int_equal(classify("$edgehub/auth-cache", "$edgehub/kick/more", "d", 1, &m), MESSAGE_PASS);
        assert_int_equal(classify("$edgehub/auth-cache", "$edgehub/other", "x", 1, &m), MESSAGE_PASS);
        /* An internal client's telemetry-looking message is not stored on anyone's behalf. */
        assert_int_equal(classify("$edgehub/auth-cache", "devices/d/messages/events/", "x", 1, &m), MESSAGE_PASS);
}

/* ---- the callback, against the ingest log (hub-store need not run) ---- */

typedef struct Fixture {
        char dir[64];
        Plugin plugin;
} Fixture;

static int fixture_setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        char path[128];

        assert_non_null(f);
        assert_int_equal(fake_runtime_dir(f->dir), 0);
        f->plugin = (Plugin){
                .broker_socket = (char *) SOCK,
                .presence = PRESENCE_NULL,
                .store_ratelimit = RATELIMIT_INIT(1000000, 100),
                .message_ratelimit = RATELIMIT_INIT(1000000, 100),
                .auth_ratelimit = RATELIMIT_INIT(1000000, 100),
        };
        snprintf(path, sizeof(path), "%s/auth-cache.sock", f->dir);
        assert_int_equal(backend_init(&f->plugin.backend, path, 100000), 0);
        /* reject_new: hub-store's room file refuses telemetry. */
        assert_int_equal(fake_ingest_open(&f->plugin.ingest, f->dir, true), 0);
        *state = f;
        return 0;
}

static int fixture_teardown(void **state) {
        Fixture *f = *state;
        ingest_append_deinit(&f->plugin.ingest);
        backend_deinit(&f->plugin.backend);
        presence_deinit(&f->plugin.presence);
        fake_dir_remove(f->dir);
        free(f);
        return 0;
}

static int publish(Fixture *f, struct mosquitto *client, const char *topic, const char *payload, uint8_t qos,
                   bool *retain) {
        struct mosquitto_evt_message ed = {
                .client = client,
                .topic = (char *) topic,
                .payload = (void *) payload,
                .payloadlen = (uint32_t) strlen(payload),
                .qos = qos,
                .retain = retain ? *retain : false,
        };
        int r = message_callback(MOSQ_EVT_MESSAGE, &ed, &f->plugin);
        if (retain)
                *retain = ed.retain;
        return r;
}

static void test_callback_store(void **state) {
        Fixture *f = *state;
        struct mosquitto device = { .id = "d", .address = "192.0.2.1", .username = "hub/d/?api-version=1" };
        struct mosquitto module = { .id = "d/m", .address = "192.0.2.1", .username = "hub/d/m/?api-version=1" };
        IngestRecord recs[4] = {};
        bool retain = true;
        char room_path[128];
        IngestRoom *room;

        /* Acknowledged once in the ingest log: hub-store is not even running. */
        assert_int_equal(publish(f, &device, "devices/d/messages/events/a=1", "hello", 1, &retain),
                         MOSQ_ERR_SUCCESS);
        assert_false(retain);
        assert_int_equal(publish(f, &module, "devices/d/modules/m/messages/events/%24.on=o1", "{}", 1, NULL),
                         MOSQ_ERR_SUCCESS);
        assert_int_equal(fake_ingest_read(f->dir, recs, ELEMENTSOF(recs)), 2);
        assert_string_equal(recs[0].identity, "d");
        assert_string_equal(recs[0].properties, "a=1");
        assert_int_equal(recs[0].payload_len, 5);
        assert_memory_equal(recs[0].payload, "hello", 5);
        assert_null(recs[0].output);
        assert_string_equal(recs[1].identity, "d/m");
        assert_string_equal(recs[1].properties, "%24.on=o1");
        assert_string_equal(recs[1].output, "o1");
        for (size_t i = 0; i < ELEMENTSOF(recs); i++)
                ingest_record_deinit(&recs[i]);

        /* Store full (reject_new): no PUBACK, the device resends later; QoS 0 is dropped instead. */
        snprintf(room_path, sizeof(room_path), "%s/" INGEST_ROOM_FILE, f->dir);
        assert_int_equal(ingest_room_create(room_path, &room), 0);
        ingest_room_publish(room, "", 0, 0); /* no room after a position that is not ours */
        f->plugin.ingest.room_tried_usec = 0; /* skip the wait of 100 ms for a room file to appear */
        assert_int_equal(publish(f, &device, "devices/d/messages/events/", "x", 1, NULL), MOSQ_ERR_UNKNOWN);
        assert_int_equal(publish(f, &device, "devices/d/messages/events/", "x", 0, NULL), MOSQ_ERR_ACL_DENIED);
        assert_int_equal(publish(f, &device, "devices/d/messages/events/", "x", 2, NULL), MOSQ_ERR_UNKNOWN);
        assert_int_equal(fake_ingest_read(f->dir, recs, ELEMENTSOF(recs)), 2);
        for (size_t i = 0; i < ELEMENTSOF(recs); i++)
                ingest_record_deinit(&recs[i]);
        (void) munmap(room, sizeof(*room));
}

static void test_callback_rejects(void **state) {
        Fixture *f = *state;
        struct mosquitto device = { .id = "d", .address = "192.0.2.1", .username = "hub/d/?api-version=1" };
        _cleanup_free_ char *big = malloc(MESSAGE_PAYLOAD_MAX + 2);

        assert_non_null(big);
        memset(big, 'x', MESSAGE_PAYLOAD_MAX + 1);
        big[MESSAGE_PAYLOAD_MAX + 1] = '\0';

        /* None of these reach the ingest log. */
        assert_int_equal(publish(f, &device, "devices/d/messages/events/", big, 1, NULL), MOSQ_ERR_PAYLOAD_SIZE);
        assert_int_equal(publish(f, &device, "devices/d/messages/events/a=%zz", "x", 1, NULL), MOSQ_ERR_ACL_DENIED);
        assert_int_equal(publish(f, &device, "devices/e/messages/events/", "x", 1, NULL), MOSQ_ERR_ACL_DENIED);

        device.id = "not/an/identity";
        assert_int_equal(publish(f, &device, "devices/d/messages/events/", "x", 1, NULL), MOSQ_ERR_ACL_DENIED);
}

static void test_callback_kick(void **state) {
        Fixture *f = *state;
        struct mosquitto daemon = { .id = "$edgehub/auth-cache", .address = SOCK, .username = "$edgehub/auth-cache" };
        struct mosquitto device = { .id = "d", .address = "192.0.2.1", .username = "hub/d/?api-version=1" };

        stub_connected[0] = "d/m";
        stub_kick_count = 0;
        assert_int_equal(publish(f, &daemon, "$edgehub/kick", "d/m", 1, NULL), MOSQ_ERR_SUCCESS);
        assert_int_equal(stub_kick_count, 1);
        assert_string_equal(stub_kicked, "d/m");

        /* Not connected: nothing to do, still fine. */
        assert_int_equal(publish(f, &daemon, "$edgehub/kick", "e", 1, NULL), MOSQ_ERR_SUCCESS);
        assert_int_equal(stub_kick_count, 1);

        assert_int_equal(publish(f, &daemon, "$edgehub/kick", "", 1, NULL), MOSQ_ERR_ACL_DENIED);
        assert_int_equal(publish(f, &daemon, "$edgehub/other", "x", 1, NULL), MOSQ_ERR_SUCCESS);

        /* The same request from a device, or over TCP, kicks nobody. */
        assert_int_equal(publish(f, &device, "$edgehub/kick", "d/m", 1, NULL), MOSQ_ERR_ACL_DENIED);
        daemon.address = "127.0.0.1";
        assert_int_equal(publish(f, &daemon, "$edgehub/kick", "d/m", 1, NULL), MOSQ_ERR_ACL_DENIED);
        assert_int_equal(stub_kick_count, 1);
        stub_connected[0] = NULL;
}

static char *user_property_of(const mosquitto_property *props, const char *key) {
        for (const mosquitto_property *p = props; p; p = mosquitto_property_next(p)) {
                char *name = NULL, *value = NULL;
                assert_true(mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value, false));
                bool match = strcmp(name, key) == 0;
                free(name);
                if (match)
                        return value;
                free(value);
        }
        return NULL;
}

static void test_callback_device_request(void **state) {
        Fixture *f = *state;
        struct mosquitto device = { .id = "d/m", .address = "192.0.2.1", .username = "hub/d/m/?api-version=1" };
        mosquitto_property *forged = NULL;
        char *client;

        /* A v5 sender's own "client" property must not survive: only the plugin names the sender. */
        assert_int_equal(mosquitto_property_add_string_pair(&forged, MQTT_PROP_USER_PROPERTY, "client", "other"),
                         MOSQ_ERR_SUCCESS);
        struct mosquitto_evt_message ed = {
                .client = &device,
                .topic = strdup("$iothub/twin/GET/?$rid=7"),
                .payload = (void *) "",
                .qos = 0,
                .retain = true,
                .properties = forged,
        };
        assert_non_null(ed.topic);
        assert_int_equal(message_callback(MOSQ_EVT_MESSAGE, &ed, &f->plugin), MOSQ_ERR_SUCCESS);
        assert_string_equal(ed.topic, "$edgehub/device/twin/GET/?$rid=7");
        assert_false(ed.retain);
        client = user_property_of(ed.properties, "client");
        assert_non_null(client);
        assert_string_equal(client, "d/m");
        assert_null(mosquitto_property_next(ed.properties));
        free(client);
        free(ed.topic);
        mosquitto_property_free_all(&ed.properties);
}

static void test_callback_deliver(void **state) {
        Fixture *f = *state;
        struct mosquitto daemon = { .id = "$edgehub-hub-store", .address = SOCK, .username = "$edgehub/hub-store" };
        struct mosquitto device = { .id = "d", .address = "192.0.2.1", .username = "hub/d/?api-version=1" };
        mosquitto_property *props = NULL;

        assert_int_equal(mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "client", "d/m"),
                         MOSQ_ERR_SUCCESS);
        assert_int_equal(mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "topic",
                                                            "devices/d/modules/m/inputs/in1/"),
                         MOSQ_ERR_SUCCESS);
        struct mosquitto_evt_message ed = {
                .client = &daemon, .topic = (char *) "$edgehub/deliver", .payload = (void *) "hi", .payloadlen = 2,
                .qos = 1, .properties = props,
        };

        /* Not connected: refused, so the sender keeps it. */
        stub_publish_count = 0;
        assert_int_equal(message_callback(MOSQ_EVT_MESSAGE, &ed, &f->plugin), MOSQ_ERR_ACL_DENIED);
        assert_int_equal(stub_publish_count, 0);

        assert_int_equal(presence_add(&f->plugin.presence, &device, "d/m"), 1);
        assert_int_equal(message_callback(MOSQ_EVT_MESSAGE, &ed, &f->plugin), MOSQ_ERR_SUCCESS);
        assert_int_equal(stub_publish_count, 1);
        assert_string_equal(stub_published_client, "d/m");
        assert_string_equal(stub_published_topic, "devices/d/modules/m/inputs/in1/");

        /* A device cannot ask for a delivery. */
        ed.client = &device;
        assert_int_equal(message_callback(MOSQ_EVT_MESSAGE, &ed, &f->plugin), MOSQ_ERR_ACL_DENIED);
        assert_int_equal(stub_publish_count, 1);

        /* A daemon's request without a target is dropped. */
        mosquitto_property_free_all(&ed.properties);
        ed.client = &daemon;
        assert_int_equal(message_callback(MOSQ_EVT_MESSAGE, &ed, &f->plugin), MOSQ_ERR_ACL_DENIED);
        assert_int_equal(stub_publish_count, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_classify_telemetry),
                cmocka_unit_test(test_classify_module_output),
                cmocka_unit_test(test_classify_foreign),
                cmocka_unit_test(test_classify_oversize),
                cmocka_unit_test(test_classify_bad_bag),
                cmocka_unit_test(test_classify_internal),
                cmocka_unit_test_setup_teardown(test_callback_store, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_callback_rejects, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_callback_kick, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_callback_device_request, fixture_setup, fixture_teardown),
                cmocka_unit_test_setup_teardown(test_callback_deliver, fixture_setup, fixture_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
