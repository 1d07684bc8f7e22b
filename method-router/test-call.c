/* Tests of the call table: a call's lifetime from its publish to its one ending, over a stand-in broker */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "method-router/call.h"
#include "method-router/test-broker.h"
#include "proto/iothub/method-request.h"
#include "proto/runtime/log.h"
#include "proto/runtime/test-daemon.h"
#include "proto/util/cleanup.h"

#define POST_PREFIX "$iothub/methods/POST/"

/* A scratch folder for the broker's socket, a loop, the bus on it, and the table under test. */
typedef struct Fixture {
        char *dir;
        sd_event *event;
        TestBroker broker;
        Bus *bus;
        CallTable table;
} Fixture;

/* What one call's callbacks saw. */
typedef struct Ended {
        unsigned n_done, n_destroyed;
        CallOutcome outcome;
        int http_status, device_status;
        char *code, *text, *payload;
        size_t len;
        /* When set, done starts this call (to see done may start calls). */
        const char *then_target;
        Call *then_call;
        struct Ended *then;
        CallTable *table;
} Ended;

static void ended_clear(Ended *e) {
        free(e->code);
        free(e->text);
        free(e->payload);
}

static void on_done(const CallResult *r, void *userdata);

static int call(Fixture *f, const char *target, const char *name, const char *payload, unsigned response_sec,
                unsigned connect_sec, Ended *e, Call **ret) {
        Call *c = NULL;
        int r;

        e->table = &f->table;
        r = call_start(&f->table, target, name, payload, strlen(payload), response_sec, connect_sec, on_done, e, &c);
        if (r >= 0)
                assert_non_null(c);
        if (ret)
                *ret = c;
        return r;
}

static void on_destroy(void *userdata) {
        ((Ended *) userdata)->n_destroyed++;
}

static void on_done(const CallResult *r, void *userdata) {
        Ended *e = userdata;

        e->n_done++;
        e->outcome = r->outcome;
        e->http_status = r->http_status;
        e->device_status = r->device_status;
        e->code = r->error_code ? strdup(r->error_code) : NULL;
        e->text = r->error_text ? strdup(r->error_text) : NULL;
        e->payload = r->payload ? strndup(r->payload, r->len) : NULL;
        e->len = r->len;
        if (e->then_target)
                assert_int_equal(call_start(e->table, e->then_target, "next", "1", 1, 5, 0, on_done, e->then,
                                            &e->then_call),
                                 0);
}

static bool is_done(void *userdata) {
        return ((Ended *) userdata)->n_done > 0;
}

static bool is_connected(void *userdata) {
        return bus_connected(userdata);
}

static int setup(void **state) {
        static const BusHandlers handlers = {};
        Fixture *f = calloc(1, sizeof(*f));
        _cleanup_free_ char *path = NULL;

        assert_non_null(f);
        f->dir = test_scratch_new("method-router-call");
        assert_true(asprintf(&path, "%s/broker.sock", f->dir) > 0);
        assert_int_equal(sd_event_new(&f->event), 0);
        test_broker_start(&f->broker, f->event, path);
        assert_int_equal(bus_new(&f->bus, f->event, path, "method-router", &handlers, f), 0);
        assert_int_equal(bus_start(f->bus), 0);
        test_broker_run_until(f->event, is_connected, f->bus);
        assert_int_equal(call_table_init(&f->table, f->event, f->bus), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        call_table_deinit(&f->table);
        bus_free(f->bus);
        test_broker_stop(&f->broker);
        sd_event_unref(f->event);
        test_scratch_remove(f->dir);
        free(f);
        return 0;
}

/* The n-th call the broker was asked to deliver to target, waited for. */
static const TestPublish *delivery(Fixture *f, const char *target, size_t n) {
        return test_broker_wait(&f->broker, BUS_TOPIC_DELIVER, target, n);
}

static void answer(Fixture *f, const char *client, int status, const char *rid, const char *payload) {
        call_table_on_answer(&f->table, client, status, rid, payload, strlen(payload));
}

static void test_call_answered_once(void **state) {
        Fixture *f = *state;
        Ended e = {};
        const TestPublish *p;

        f->broker.online[0] = "dev/mod";
        assert_int_equal(call(f, "dev/mod", "reboot", "{\"delay\":1}", 5, 0, &e, NULL), 0);
        assert_int_equal(f->table.n_calls, 1);
        assert_int_equal(f->table.stats.started, 1);

        /* To the target, as the device will see it, through the plugin's deliver topic. */
        p = delivery(f, "dev/mod", 0);
        assert_string_equal(p->payload, "{\"delay\":1}");
        assert_int_equal(strncmp(p->target, POST_PREFIX "reboot/?$rid=", strlen(POST_PREFIX "reboot/?$rid=")), 0);
        test_broker_flush(&f->broker, f->bus);
        assert_int_equal(e.n_done, 0);

        answer(f, "dev/mod", 201, test_publish_rid(p), "{\"rebooting\":true}");
        assert_int_equal(e.n_done, 1);
        assert_int_equal(e.outcome, CALL_ANSWERED);
        assert_int_equal(e.http_status, 200);
        assert_int_equal(e.device_status, 201);
        assert_null(e.code);
        assert_null(e.text);
        assert_string_equal(e.payload, "{\"rebooting\":true}");
        assert_int_equal(f->table.n_calls, 0);
        assert_int_equal(f->table.stats.answered, 1);

        /* Ended exactly once: the same answer again matches nothing. */
        answer(f, "dev/mod", 201, test_publish_rid(p), "{}");
        assert_int_equal(e.n_done, 1);
        assert_int_equal(f->table.stats.stray_answers, 1);
        ended_clear(&e);
}

/* An answer counts only from the target, to a rid of ours; others leave the call as it was. */
static void test_call_rid_matching(void **state) {
        Fixture *f = *state;
        Ended a = {}, b = {};
        const TestPublish *pa, *pb;
        _cleanup_free_ char *other_run = NULL;

        f->broker.online[0] = "a";
        f->broker.online[1] = "b";
        assert_int_equal(call(f, "a", "m", "1", 5, 0, &a, NULL), 0);
        assert_int_equal(call(f, "b", "m", "2", 5, 0, &b, NULL), 0);
        pa = delivery(f, "a", 0);
        pb = delivery(f, "b", 0);
        assert_string_not_equal(test_publish_rid(pa), test_publish_rid(pb));
        test_broker_flush(&f->broker, f->bus);

        /* b answering a's call, an unknown rid, no client, and a rid of another run of the daemon. */
        answer(f, "b", 200, test_publish_rid(pa), "\"from b\"");
        answer(f, "a", 200, "x-1", "\"unknown\"");
        answer(f, NULL, 200, test_publish_rid(pa), "\"nobody\"");
        other_run = strdup(test_publish_rid(pa));
        other_run[0] = other_run[0] == '0' ? '1' : '0';
        answer(f, "a", 200, other_run, "\"before a restart\"");
        assert_int_equal(a.n_done + b.n_done, 0);
        assert_int_equal(f->table.n_calls, 2);
        assert_int_equal(f->table.stats.stray_answers, 4);

        /* Each answer ends its own call, in any order. */
        answer(f, "b", 200, test_publish_rid(pb), "\"b\"");
        assert_int_equal(b.n_done, 1);
        assert_string_equal(b.payload, "\"b\"");
        assert_int_equal(a.n_done, 0);
        answer(f, "a", 500, test_publish_rid(pa), "\"a\"");
        assert_int_equal(a.n_done, 1);
        assert_int_equal(a.device_status, 500);
        assert_string_equal(a.payload, "\"a\"");
        assert_int_equal(f->table.n_calls, 0);
        assert_int_equal(f->table.stats.answered, 2);
        ended_clear(&a);
        ended_clear(&b);
}

static void test_call_times_out(void **state) {
        Fixture *f = *state;
        Ended e = {};
        _cleanup_free_ char *rid = NULL;

        f->broker.online[0] = "dev";
        /* responseTimeoutInSeconds 0 (the parser's minimum is 5): the deadline is the PUBACK. */
        assert_int_equal(call(f, "dev", "slow", "{}", 0, 0, &e, NULL), 0);
        rid = strdup(test_publish_rid(delivery(f, "dev", 0)));
        test_broker_run_until(f->event, is_done, &e);
        assert_int_equal(e.outcome, CALL_TIMED_OUT);
        assert_int_equal(e.http_status, 504);
        assert_string_equal(e.code, "GatewayTimeout");
        assert_string_equal(e.text, "'dev' did not answer method 'slow' within 0 s");
        assert_null(e.payload);
        assert_int_equal(f->table.n_calls, 0);
        assert_int_equal(f->table.stats.timed_out, 1);

        /* A late answer finds no call. */
        answer(f, "dev", 200, rid, "{}");
        assert_int_equal(e.n_done, 1);
        assert_int_equal(f->table.stats.stray_answers, 1);
        ended_clear(&e);
}

/* A PUBACK that never comes: the call ends at its whole budget plus the grace, not never. */
static void test_call_without_puback_times_out(void **state) {
        Fixture *f = *state;
        Ended e = {};

        f->broker.hold_pubacks = true;
        assert_int_equal(call(f, "dev", "m", "{}", 0, 0, &e, NULL), 0);
        test_broker_run_until(f->event, is_done, &e);
        assert_int_equal(e.outcome, CALL_TIMED_OUT);
        assert_int_equal(f->table.n_calls, 0);
        ended_clear(&e);
}

static void test_call_target_not_connected(void **state) {
        Fixture *f = *state;
        Ended now = {}, later = {};

        /* Without connectTimeoutInSeconds: 404 as soon as the plugin says the target is not there. */
        assert_int_equal(call(f, "dev", "m", "{}", 5, 0, &now, NULL), 0);
        test_broker_run_until(f->event, is_done, &now);
        assert_int_equal(now.outcome, CALL_NOT_CONNECTED);
        assert_int_equal(now.http_status, 404);
        assert_string_equal(now.code, "DeviceNotOnline");
        assert_string_equal(now.text, "'dev' is not connected to the gateway");
        assert_int_equal(test_broker_count(&f->broker, BUS_TOPIC_DELIVER, "dev"), 1);

        /* With it: 404 once that many seconds passed with no subscription from the target. */
        assert_int_equal(call(f, "dev", "m", "{}", 5, 1, &later, NULL), 0);
        test_broker_run_until(f->event, is_done, &later);
        assert_int_equal(later.outcome, CALL_NOT_CONNECTED);
        assert_int_equal(test_broker_count(&f->broker, BUS_TOPIC_DELIVER, "dev"), 2);
        assert_int_equal(f->table.stats.not_connected, 2);
        assert_int_equal(f->table.n_calls, 0);
        ended_clear(&now);
        ended_clear(&later);
}

/* A call waiting for its target is sent again when the target subscribes to method calls, and only then. */
static void test_call_waits_for_target(void **state) {
        Fixture *f = *state;
        Ended e = {};
        const TestPublish *first, *again;
        static const char *const not_methods[] = { "$iothub/twin/#", "$iothub/methods/res/#", "$iothub/methods" };
        static const char *const methods[] = { "$iothub/#", "$iothub/methods/#", "$iothub/methods/+/#",
                                               "$iothub/methods/POST/#" };

        assert_int_equal(call(f, "dev", "m", "{\"n\":1}", 5, 60, &e, NULL), 0);
        first = delivery(f, "dev", 0);
        test_broker_flush(&f->broker, f->bus);

        /* Waiting: an answer to it now is not taken (it was never delivered). */
        answer(f, "dev", 200, test_publish_rid(first), "{}");
        assert_int_equal(f->table.stats.stray_answers, 1);

        /* Someone else subscribing, or the target subscribing to something else, changes nothing. */
        call_table_on_subscribe(&f->table, "other", methods[0]);
        call_table_on_subscribe(&f->table, NULL, methods[0]);
        for (size_t i = 0; i < ELEMENTSOF(not_methods); i++)
                call_table_on_subscribe(&f->table, "dev", not_methods[i]);
        test_broker_flush(&f->broker, f->bus);
        assert_int_equal(test_broker_count(&f->broker, BUS_TOPIC_DELIVER, "dev"), 1);
        assert_int_equal(e.n_done, 0);

        /* Each filter that takes method calls sends it again, with the same rid; still offline, it waits again. */
        for (size_t i = 0; i < ELEMENTSOF(methods); i++) {
                call_table_on_subscribe(&f->table, "dev", methods[i]);
                again = delivery(f, "dev", i + 1);
                assert_string_equal(again->target, first->target);
                assert_string_equal(again->payload, "{\"n\":1}");
                test_broker_flush(&f->broker, f->bus);
                assert_int_equal(e.n_done, 0);
        }

        /* Online at last: delivered, and its answer is taken. */
        f->broker.online[0] = "dev";
        call_table_on_subscribe(&f->table, "dev", "$iothub/methods/POST/#");
        again = delivery(f, "dev", ELEMENTSOF(methods) + 1);
        test_broker_flush(&f->broker, f->bus);
        answer(f, "dev", 200, test_publish_rid(again), "{\"ok\":1}");
        assert_int_equal(e.n_done, 1);
        assert_int_equal(e.outcome, CALL_ANSWERED);
        assert_string_equal(e.payload, "{\"ok\":1}");
        assert_int_equal(f->table.stats.not_connected, 0);
        ended_clear(&e);
}

static void test_call_bad_answers(void **state) {
        Fixture *f = *state;
        Ended bad = {}, big = {}, empty = {};
        const TestPublish *p;
        char *huge;

        f->broker.online[0] = "dev";
        assert_int_equal(call(f, "dev", "m", "{}", 5, 0, &bad, NULL), 0);
        assert_int_equal(call(f, "dev", "m", "{}", 5, 0, &big, NULL), 0);
        assert_int_equal(call(f, "dev", "m", "{}", 5, 0, &empty, NULL), 0);
        delivery(f, "dev", 2);
        test_broker_flush(&f->broker, f->bus);

        p = test_broker_find(&f->broker, BUS_TOPIC_DELIVER, "dev", 0);
        answer(f, "dev", 200, test_publish_rid(p), "not json");
        assert_int_equal(bad.outcome, CALL_BAD_ANSWER);
        assert_int_equal(bad.http_status, 502);
        assert_string_equal(bad.code, "BadDeviceResponse");
        assert_string_equal(bad.text, "'dev' answered method 'm' with a payload that is not JSON");

        /* JSON, but more than IoT Hub's 128 KB. */
        huge = malloc(METHOD_PAYLOAD_MAX + 3);
        assert_non_null(huge);
        memset(huge, 'a', METHOD_PAYLOAD_MAX + 2);
        huge[0] = huge[METHOD_PAYLOAD_MAX + 1] = '"';
        huge[METHOD_PAYLOAD_MAX + 2] = '\0';
        p = test_broker_find(&f->broker, BUS_TOPIC_DELIVER, "dev", 1);
        answer(f, "dev", 200, test_publish_rid(p), huge);
        free(huge);
        assert_int_equal(big.outcome, CALL_BAD_ANSWER);

        /* An empty answer is an answer without a payload. */
        p = test_broker_find(&f->broker, BUS_TOPIC_DELIVER, "dev", 2);
        answer(f, "dev", 204, test_publish_rid(p), "");
        assert_int_equal(empty.outcome, CALL_ANSWERED);
        assert_int_equal(empty.device_status, 204);
        assert_int_equal(empty.len, 0);

        assert_int_equal(f->table.stats.bad_answers, 2);
        assert_int_equal(f->table.stats.answered, 1);
        ended_clear(&bad);
        ended_clear(&big);
        ended_clear(&empty);
}

static void test_call_bus_down(void **state) {
        static const BusHandlers handlers = {};
        Fixture *f = *state;
        _cleanup_free_ char *nowhere = NULL;
        CallTable down = CALL_TABLE_NULL;
        Bus *never = NULL;
        Ended e = {}, lost = {};
        Call *c = NULL;

        /* Not connected: nothing starts, and done is not called (the caller answers 503 itself). */
        assert_true(asprintf(&nowhere, "%s/nowhere.sock", f->dir) > 0);
        assert_int_equal(bus_new(&never, f->event, nowhere, "method-router", &handlers, NULL), 0);
        assert_int_equal(call_table_init(&down, f->event, never), 0);
        assert_int_equal(call_start(&down, "dev", "m", "{}", 2, 5, 0, on_done, &e, &c), -ENOTCONN);
        assert_null(c);
        assert_int_equal(down.n_calls, 0);
        assert_int_equal(down.stats.started, 0);
        call_table_deinit(&down);
        bus_free(never);
        assert_int_equal(e.n_done, 0);

        /* The broker goes away before the PUBACK: 503, as the call may not have reached the target. */
        f->broker.hold_pubacks = true;
        assert_int_equal(call(f, "dev", "m", "{}", 5, 0, &lost, NULL), 0);
        delivery(f, "dev", 0);
        test_broker_drop(&f->broker);
        test_broker_run_until(f->event, is_done, &lost);
        assert_int_equal(lost.outcome, CALL_BUS_DOWN);
        assert_int_equal(lost.http_status, 503);
        assert_string_equal(lost.code, "ServiceUnavailable");
        assert_string_equal(lost.text, "the gateway's local broker is not reachable; 'dev' was not called");
        assert_int_equal(f->table.stats.bus_down, 1);
        assert_int_equal(f->table.n_calls, 0);
        ended_clear(&lost);
}

/* A cancelled call, or one the table drops, ends through destroy and never through done; its PUBACK is harmless. */
static void test_call_cancel_and_deinit(void **state) {
        Fixture *f = *state;
        Ended a = {}, b = {}, c = {};
        Call *ca = NULL, *cb = NULL, *cc = NULL;
        const TestPublish *pa;

        f->broker.online[0] = "dev";
        f->broker.hold_pubacks = true;
        assert_int_equal(call(f, "dev", "m", "{}", 5, 0, &a, &ca), 0);
        assert_int_equal(call(f, "dev", "m", "{}", 5, 0, &b, &cb), 0);
        assert_int_equal(call(f, "dev", "m", "{}", 5, 0, &c, &cc), 0);
        call_set_destroy(ca, on_destroy);
        call_set_destroy(cb, on_destroy);
        call_set_destroy(cc, on_destroy);
        delivery(f, "dev", 2);
        pa = test_broker_find(&f->broker, BUS_TOPIC_DELIVER, "dev", 0);

        call_cancel(ca);
        call_cancel(NULL);
        assert_int_equal(a.n_destroyed, 1);
        assert_int_equal(f->table.n_calls, 2);
        answer(f, "dev", 200, test_publish_rid(pa), "{}");
        assert_int_equal(a.n_done, 0);
        assert_int_equal(f->table.stats.stray_answers, 1);

        /* The PUBACKs of all three arrive after the cancel. */
        test_broker_release(&f->broker);
        test_broker_flush(&f->broker, f->bus);
        assert_int_equal(a.n_done + a.n_destroyed, 1);

        call_table_deinit(&f->table);
        assert_int_equal(f->table.n_calls, 0);
        assert_int_equal(b.n_destroyed + c.n_destroyed, 2);
        assert_int_equal(b.n_done + c.n_done, 0);
}

/* The answer may come before the plugin's PUBACK: the call ends, and the PUBACK after it finds nothing. */
static void test_call_answer_before_puback(void **state) {
        Fixture *f = *state;
        Ended e = {};
        const TestPublish *p;

        f->broker.online[0] = "dev";
        f->broker.hold_pubacks = true;
        assert_int_equal(call(f, "dev", "m", "{}", 0, 0, &e, NULL), 0);
        p = delivery(f, "dev", 0);
        answer(f, "dev", 200, test_publish_rid(p), "[1]");
        assert_int_equal(e.n_done, 1);
        assert_int_equal(e.outcome, CALL_ANSWERED);

        /* With a response timeout of 0 a PUBACK reaching the call would end it again as timed out. */
        test_broker_release(&f->broker);
        test_broker_flush(&f->broker, f->bus);
        test_broker_run_for(f->event, 50u * 1000u);
        assert_int_equal(e.n_done, 1);
        assert_int_equal(f->table.stats.timed_out, 0);
        assert_int_equal(f->table.n_calls, 0);
        ended_clear(&e);
}

/* done may start the next call (the ended one is unlinked first). */
static void test_call_done_starts_a_call(void **state) {
        Fixture *f = *state;
        Ended first = {}, second = {};
        const TestPublish *p;

        f->broker.online[0] = "a";
        f->broker.online[1] = "b";
        first.then_target = "b";
        first.then = &second;
        assert_int_equal(call(f, "a", "m", "{}", 5, 0, &first, NULL), 0);
        p = delivery(f, "a", 0);
        test_broker_flush(&f->broker, f->bus);
        answer(f, "a", 200, test_publish_rid(p), "{}");
        assert_int_equal(first.n_done, 1);
        assert_non_null(first.then_call);
        assert_int_equal(f->table.n_calls, 1);

        p = delivery(f, "b", 0);
        assert_string_equal(p->payload, "1");
        test_broker_flush(&f->broker, f->bus);
        answer(f, "b", 200, test_publish_rid(p), "2");
        assert_int_equal(second.n_done, 1);
        assert_string_equal(second.payload, "2");
        assert_int_equal(f->table.stats.started, 2);
        assert_int_equal(f->table.n_calls, 0);
        ended_clear(&first);
        ended_clear(&second);
}

/* A name that cannot be put in a topic starts nothing and sends nothing. */
static void test_call_refuses_bad_name(void **state) {
        Fixture *f = *state;
        static const char *const names[] = { "", "a/b", "a b", "#", "+", "a?b" };
        Ended e = {};
        Call *c = NULL;

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_int_equal(call_start(&f->table, "dev", names[i], "{}", 2, 5, 0, on_done, &e, &c), -EINVAL);
        test_broker_flush(&f->broker, f->bus);
        assert_int_equal(test_broker_count(&f->broker, BUS_TOPIC_DELIVER, NULL), 0);
        assert_int_equal(f->table.n_calls, 0);
        assert_int_equal(f->table.stats.started, 0);
        assert_int_equal(e.n_done, 0);
        assert_null(c);
}

static void test_call_outcome_codes(void **state) {
        assert_null(call_outcome_code(CALL_ANSWERED));
        assert_string_equal(call_outcome_code(CALL_NOT_CONNECTED), "DeviceNotOnline");
        assert_string_equal(call_outcome_code(CALL_TIMED_OUT), "GatewayTimeout");
        assert_string_equal(call_outcome_code(CALL_BAD_ANSWER), "BadDeviceResponse");
        assert_string_equal(call_outcome_code(CALL_BUS_DOWN), "ServiceUnavailable");
        assert_null(call_outcome_code(_CALL_OUTCOME_MAX));
        assert_null(call_outcome_code((CallOutcome) -1));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_call_answered_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_call_rid_matching, setup, teardown),
                cmocka_unit_test_setup_teardown(test_call_times_out, setup, teardown),
                cmocka_unit_test_setup_teardown(test_call_without_puback_times_out, setup, teardown),
                cmocka_unit_test_setup_teardown(test_call_target_not_connected, setup, teardown),
                cmocka_unit_test_setup_teardown(test_call_waits_for_target, setup, teardown),
                cmocka_unit_test_setup_teardown(test_call_bad_answers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_call_bus_down, setup, teardown),
                cmocka_unit_test_setup_teardown(test_call_cancel_and_deinit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_call_answer_before_puback, setup, teardown),
                cmocka_unit_test_setup_teardown(test_call_done_starts_a_call, setup, teardown),
                cmocka_unit_test_setup_teardown(test_call_refuses_bad_name, setup, teardown),
                cmocka_unit_test(test_call_outcome_codes),
        };

        log_set_max_level(LOG_CRIT);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
