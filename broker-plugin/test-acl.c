/* Tests of the per-identity ACL (DESIGN.md invariant 5) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker-plugin/acl.h"
#include "broker-plugin/broker-api.h"
#include "broker-plugin/plugin.h"
#include "broker-plugin/test-broker-stubs.h"
#include "proto/util/cleanup.h"

#define SOCK "/run/edgehub/broker.sock"
#define R MOSQ_ACL_READ
#define W MOSQ_ACL_WRITE
#define S MOSQ_ACL_SUBSCRIBE
#define U MOSQ_ACL_UNSUBSCRIBE
#define OK MOSQ_ERR_SUCCESS
#define NO MOSQ_ERR_ACL_DENIED

typedef struct AclCase {
        const char *client_id;
        const char *username; /* NULL: a device's username; "$edgehub/..." internal */
        const char *address;  /* NULL: a TCP client */
        int access;
        const char *topic;
        int want;
} AclCase;

static const AclCase cases[] = {
        /* A device's own topics. */
        { "d", NULL, NULL, W, "devices/d/messages/events/", OK },
        { "d", NULL, NULL, W, "devices/d/messages/events/a=1&%24.ct=application%2Fjson", OK },
        { "d", NULL, NULL, W, "devices/d/messages/events", OK },
        { "d", NULL, NULL, W, "devices/d/messages/events/a=1/", OK },
        { "d", NULL, NULL, S, "devices/d/messages/devicebound/#", OK },
        { "d", NULL, NULL, S, "devices/d/messages/devicebound/+", OK },
        { "d", NULL, NULL, S, "devices/d/messages/devicebound", OK },
        { "d", NULL, NULL, R, "devices/d/messages/devicebound/%24.mid=1&x=y", OK },
        { "d", NULL, NULL, S, "$iothub/twin/res/#", OK },
        { "d", NULL, NULL, S, "$iothub/twin/PATCH/properties/desired/#", OK },
        { "d", NULL, NULL, S, "$iothub/methods/POST/#", OK },
        { "d", NULL, NULL, R, "$iothub/twin/res/200/?$rid=1", OK },
        { "d", NULL, NULL, R, "$iothub/methods/POST/reboot/?$rid=7", OK },
        { "d", NULL, NULL, U, "#", OK },
        { "d", NULL, NULL, U, "devices/e/messages/devicebound/#", OK },

        /* Another device's topics. */
        { "d", NULL, NULL, W, "devices/e/messages/events/", NO },
        { "d", NULL, NULL, W, "devices/dd/messages/events/", NO },
        { "d", NULL, NULL, W, "devices/D/messages/events/", NO },
        { "dd", NULL, NULL, W, "devices/d/messages/events/", NO },
        { "d", NULL, NULL, S, "devices/e/messages/devicebound/#", NO },
        { "d", NULL, NULL, R, "devices/e/messages/devicebound/", NO },

        /* Wildcards that would cover other identities. */
        { "d", NULL, NULL, S, "#", NO },
        { "d", NULL, NULL, S, "+", NO },
        { "d", NULL, NULL, S, "devices/#", NO },
        { "d", NULL, NULL, S, "devices/+/messages/devicebound/#", NO },
        { "d", NULL, NULL, S, "devices/+/messages/events/#", NO },
        { "d", NULL, NULL, S, "devices/d/#", NO },
        { "d", NULL, NULL, S, "devices/d/+/devicebound/#", NO },
        { "d", NULL, NULL, S, "devices/d/messages/#", NO },
        { "d", NULL, NULL, S, "devices/d/messages/+/#", NO },
        { "d", NULL, NULL, S, "+/d/messages/devicebound/#", NO },
        { "d", NULL, NULL, S, "$iothub/#", NO },
        { "d", NULL, NULL, S, "$iothub/+/res/#", NO },
        { "d", NULL, NULL, S, "$iothub/twin/#", NO },
        { "d", NULL, NULL, S, "$share/g/devices/d/messages/devicebound/#", NO },
        { "d", NULL, NULL, S, "$SYS/#", NO },
        { "d", NULL, NULL, W, "devices/+/messages/events/", NO },
        { "d", NULL, NULL, W, "devices/#", NO },

        /* Path tricks: MQTT levels are literal names. */
        { "d", NULL, NULL, W, "devices/d/../e/messages/events/", NO },
        { "d", NULL, NULL, W, "devices/e/../d/messages/events/", NO },
        { "d", NULL, NULL, W, "devices//d/messages/events/", NO },
        { "d", NULL, NULL, W, "/devices/d/messages/events/", NO },
        { "d", NULL, NULL, W, "devices/d/messages/eventsX/", NO },
        { "d", NULL, NULL, W, "devices/d/messages/devicebound/", NO },
        { "d", NULL, NULL, S, "devices/d/messages/deviceboundX/#", NO },
        { "d", NULL, NULL, S, "devices/d/messages/events/#", NO },
        { "d", NULL, NULL, R, "devices/d/messages/events/", NO },
        { "d", NULL, NULL, W, "", NO },
        { "d", NULL, NULL, S, "", NO },

        /* $iothub requests are written (and relayed to our daemons); answers and $edgehub are not. */
        { "d", NULL, NULL, W, "$iothub/twin/GET/?$rid=1", OK },
        { "d/m", NULL, NULL, W, "$iothub/twin/PATCH/properties/reported/?$rid=2", OK },
        { "d", NULL, NULL, W, "$iothub/methods/res/200/?$rid=1", OK },
        { "d/m", NULL, NULL, W, "$iothub/methods/invoke/d2/?$rid=1", OK },
        { "d/m", NULL, NULL, S, "$iothub/methods/invoke/res/#", OK },
        /* Writable and readable topics are disjoint: a Will there would reach the caller. */
        { "d/m", NULL, NULL, W, "$iothub/methods/invoke/res/200/?$rid=1", NO },
        { "d", NULL, NULL, W, "$iothub/methods/invoke/res", NO },
        { "d", NULL, NULL, W, "$iothub/twin/res/200/?$rid=1", NO },
        { "d", NULL, NULL, W, "$iothub/twin/PATCH/properties/desired/?$version=2", NO },
        { "d", NULL, NULL, W, "$iothub/methods/POST/reboot/?$rid=1", NO },
        { "d", NULL, NULL, S, "$iothub/methods/invoke/#", NO },
        { "d", NULL, NULL, W, "$edgehub/kick", NO },
        { "d", NULL, NULL, S, "$edgehub/#", NO },
        { "d", NULL, NULL, R, "$edgehub/kick", NO },
        { "d", NULL, NULL, W, "devices/d/modules/m/messages/events/", NO },
        { "d", NULL, NULL, S, "devices/d/modules/m/inputs/#", NO },
        { "d", NULL, NULL, S, "devices/d/messages/devicebound/#", OK },

        /* A module's own topics, and only those. */
        { "d/m", NULL, NULL, W, "devices/d/modules/m/messages/events/", OK },
        { "d/m", NULL, NULL, W, "devices/d/modules/m/messages/events/%24.on=out1", OK },
        { "d/m", NULL, NULL, S, "devices/d/modules/m/inputs/#", OK },
        { "d/m", NULL, NULL, S, "devices/d/modules/m/inputs/in1/#", OK },
        { "d/m", NULL, NULL, R, "devices/d/modules/m/inputs/in1/%24.mid=2", OK },
        { "d/m", NULL, NULL, S, "$iothub/methods/POST/#", OK },
        { "d/m", NULL, NULL, W, "devices/d/messages/events/", NO },
        { "d/m", NULL, NULL, S, "devices/d/messages/devicebound/#", NO },
        { "d/m", NULL, NULL, W, "devices/d/modules/n/messages/events/", NO },
        { "d/m", NULL, NULL, S, "devices/d/modules/n/inputs/#", NO },
        { "d/m", NULL, NULL, S, "devices/d/modules/+/inputs/#", NO },
        { "d/m", NULL, NULL, S, "devices/d/modules/#", NO },
        { "d/m", NULL, NULL, W, "devices/e/modules/m/messages/events/", NO },
        { "d/m", NULL, NULL, R, "devices/d/modules/m/messages/events/", NO },
        { "d/$edgeAgent", NULL, NULL, W, "devices/d/modules/$edgeAgent/messages/events/", OK },

        /* Client ids that are not identities get nothing. */
        { "d/m/x", NULL, NULL, W, "devices/d/modules/m/messages/events/", NO },
        { "d+", NULL, NULL, W, "devices/d+/messages/events/", NO },
        { "#", NULL, NULL, S, "devices/#/messages/devicebound/#", NO },
        { "+", NULL, NULL, W, "devices/+/messages/events/", NO },
        { "d/", NULL, NULL, W, "devices/d/messages/events/", NO },
        { "/m", NULL, NULL, W, "devices//modules/m/messages/events/", NO },
        { "", NULL, NULL, W, "devices//messages/events/", NO },
        { "$edgehub/x", NULL, NULL, W, "devices/$edgehub/modules/x/messages/events/", NO },
        { "$edgehub/x", NULL, NULL, W, "$edgehub/kick", NO },
        { "$edgehub-auth-cache", NULL, NULL, W, "devices/$edgehub-auth-cache/messages/events/", NO },

        /* Our daemons, on the internal socket only, under $edgehub/ only. */
        { "$edgehub/hub-store", "$edgehub/hub-store", SOCK, W, "$edgehub/kick", OK },
        { "$edgehub/hub-store", "$edgehub/hub-store", SOCK, S, "$edgehub/#", OK },
        { "$edgehub/hub-store", "$edgehub/hub-store", SOCK, R, "$edgehub/presence/d", OK },
        { "$edgehub/hub-store", "$edgehub/hub-store", "unix-socket", W, "$edgehub/kick", OK },
        { "$edgehub/hub-store", "$edgehub/hub-store", SOCK, S, "#", NO },
        { "$edgehub/hub-store", "$edgehub/hub-store", SOCK, S, "+/kick", NO },
        { "$edgehub/hub-store", "$edgehub/hub-store", SOCK, W, "devices/d/messages/events/", NO },
        { "$edgehub/hub-store", "$edgehub/hub-store", SOCK, W, "$edgehubX/kick", NO },
        { "$edgehub/hub-store", "$edgehub/hub-store", SOCK, S, "$edgehub", OK },
        { "$edgehub/hub-store", "$edgehub/hub-store", "127.0.0.1", W, "$edgehub/kick", NO },
        { "$edgehub/hub-store", "$edgehub/hub-store", "/tmp/other.sock", W, "$edgehub/kick", NO },
        { "x", "$edgehub/", SOCK, W, "$edgehub/kick", NO },
        /* A device on the internal socket is still a device. */
        { "d", "hub/d/?api-version=2021-04-12", SOCK, W, "devices/d/messages/events/", OK },
        { "d", "hub/d/?api-version=2021-04-12", SOCK, W, "$edgehub/kick", NO },
};

static const char *access_name(int access) {
        switch (access) {
        case R:
                return "read";
        case W:
                return "write";
        case S:
                return "subscribe";
        case U:
                return "unsubscribe";
        default:
                return "?";
        }
}

static void test_acl_table(void **state) {
        unsigned failures = 0;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const AclCase *t = &cases[i];
                const char *username = t->username ? t->username : "hub/whatever/?api-version=2021-04-12";
                Client c;

                (void) client_classify(t->address ? t->address : "192.0.2.1", SOCK, username, t->client_id, &c);
                int got = acl_decide(&c, t->access, t->topic);
                if (got != t->want) {
                        fprintf(stderr, "case %zu: '%s' %s '%s': got %s, want %s\n", i, t->client_id,
                                access_name(t->access), t->topic, got == OK ? "allowed" : "denied",
                                t->want == OK ? "allowed" : "denied");
                        failures++;
                }
        }
        assert_int_equal(failures, 0);
}

static void test_acl_unknown_access(void **state) {
        Client c;
        assert_int_equal(client_classify("192.0.2.1", SOCK, "hub/d/", "d", &c), 0);
        assert_int_equal(acl_decide(&c, 0, "devices/d/messages/events/"), NO);
        assert_int_equal(acl_decide(&c, R | W, "devices/d/messages/devicebound/"), OK);
        assert_int_equal(acl_decide(NULL, W, "devices/d/messages/events/"), NO);
        assert_int_equal(acl_decide(&c, W, NULL), NO);
        Client invalid = CLIENT_NULL;
        assert_int_equal(acl_decide(&invalid, S, "devices/d/messages/devicebound/#"), NO);
        assert_int_equal(acl_decide(&invalid, U, "devices/d/messages/devicebound/#"), OK);
}

static void test_acl_long_ids(void **state) {
        char id[IOT_ID_MAX + 2], topic[512];
        Client c;

        memset(id, 'a', IOT_ID_MAX);
        id[IOT_ID_MAX] = '\0';
        snprintf(topic, sizeof(topic), "devices/%s/messages/events/", id);
        assert_int_equal(client_classify("192.0.2.1", SOCK, "hub/x/", id, &c), 0);
        assert_int_equal(acl_decide(&c, W, topic), OK);

        /* One over IoT Hub's limit: not an identity. */
        id[IOT_ID_MAX] = 'a';
        id[IOT_ID_MAX + 1] = '\0';
        assert_int_equal(client_classify("192.0.2.1", SOCK, "hub/x/", id, &c), -EINVAL);
        snprintf(topic, sizeof(topic), "devices/%s/messages/events/", id);
        assert_int_equal(acl_decide(&c, W, topic), NO);
}

static void test_acl_callback(void **state) {
        Plugin p = { .broker_socket = (char *) SOCK, .expiry = TOKEN_EXPIRY_NULL };
        struct mosquitto device = { .id = "d", .address = "192.0.2.1", .username = "hub/d/?api-version=1" };
        struct mosquitto daemon = { .id = "$edgehub/x", .address = SOCK, .username = "$edgehub/x" };
        struct mosquitto_evt_acl_check ed = {
                .client = &device, .access = W, .topic = "devices/d/messages/events/" };

        /* A live connection's publishes (a write check of a connection that is not live is its Will). */
        assert_int_equal(token_expiry_add(&p.expiry, &device, "d", 0), 0);
        assert_int_equal(acl_check_callback(MOSQ_EVT_ACL_CHECK, &ed, &p), OK);
        ed.topic = "$edgehub/kick";
        assert_int_equal(acl_check_callback(MOSQ_EVT_ACL_CHECK, &ed, &p), NO);
        ed.client = &daemon;
        assert_int_equal(acl_check_callback(MOSQ_EVT_ACL_CHECK, &ed, &p), OK);
        daemon.address = "10.0.0.1";
        assert_int_equal(acl_check_callback(MOSQ_EVT_ACL_CHECK, &ed, &p), NO);
        device.id = NULL;
        ed.client = &device;
        ed.topic = "devices/d/messages/events/";
        assert_int_equal(acl_check_callback(MOSQ_EVT_ACL_CHECK, &ed, &p), NO);

        /* Retained messages never reach a device, even on its own topics. */
        device.id = "d";
        ed = (struct mosquitto_evt_acl_check){ .client = &device, .access = R,
                                               .topic = "devices/d/messages/devicebound/x" };
        assert_int_equal(acl_check_callback(MOSQ_EVT_ACL_CHECK, &ed, &p), OK);
        ed.retain = true;
        assert_int_equal(acl_check_callback(MOSQ_EVT_ACL_CHECK, &ed, &p), NO);
        token_expiry_deinit(&p.expiry);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_acl_table),
                cmocka_unit_test(test_acl_unknown_access),
                cmocka_unit_test(test_acl_long_ids),
                cmocka_unit_test(test_acl_callback),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
