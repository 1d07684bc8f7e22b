/* Tests of method-router's core: calls from the bus and the control socket, against stand-in auth-cache and broker */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "method-router/http-server.h"
#include "method-router/manager.h"
#include "method-router/test-broker.h"
#include "proto/iothub/method-request.h"
#include "proto/ipc/peer.h"
#include "proto/ipc/server.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/runtime/test-daemon.h"
#include "proto/util/cleanup.h"

#define REQUEST "{\"methodName\":\"reboot\",\"payload\":{\"delay\":1}}"
/* The edge device of test_config_new() is "edge1": its modules may call. */
#define MODULE "edge1/mod"
#define INVOKE_TOPIC BUS_PREFIX_DEVICE "methods/invoke/"
#define INVOKE_RES "$iothub/methods/invoke/res/"

/* A scratch folder, the Manager on it and the stand-ins it talks to; the teardown frees what is there. */
typedef struct Fixture {
        char *dir;
        Manager *m;
        pid_t auth_cache; /* the stand-in, or 0 */
        TestBroker broker;
        bool broker_started;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        _cleanup_free_ char *run = NULL;

        assert_non_null(f);
        f->dir = test_scratch_new("method-router");
        assert_true(asprintf(&run, "%s/run", f->dir) > 0);
        assert_int_equal(mkdir(run, 0755), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        if (f->broker_started)
                test_broker_stop(&f->broker);
        manager_free(f->m);
        if (f->auth_cache > 0) {
                kill(f->auth_cache, SIGKILL);
                waitpid(f->auth_cache, NULL, 0);
        }
        test_scratch_remove(f->dir);
        free(f);
        return 0;
}

/* The Manager as manager_new() leaves it: auth-cache and the broker expected at {dir}/run. */
static Manager *make_manager(Fixture *f) {
        Config *config = test_config_new(f->dir);

        assert_null(f->m);
        assert_int_equal(manager_new(&f->m, &config), 0);
        return f->m;
}

/* Identities the stand-in auth-cache knows: everything else is not in scope, and "off" is disabled. */
static const char *const scope[] = { "dev1", "dev1/mod", "leaf", MODULE, "edge1/other", NULL };

/* The stand-in auth-cache: identity queries only; a key request closes the connection. */
static int auth_handler(void *userdata, const Frame *request, FrameBuilder *reply) {
        _cleanup_free_ char *identity = NULL;

        if (request->type != WIRE_IDENTITY_REQUEST || frame_get_string(request, WIRE_IDENTITY, &identity) < 0)
                return -EBADMSG;
        for (size_t i = 0; scope[i]; i++)
                if (strcmp(identity, scope[i]) == 0) {
                        wire_reply_init(reply, WIRE_IDENTITY_REPLY, 0, NULL);
                        return 0;
                }
        if (strcmp(identity, "off") == 0)
                wire_reply_init(reply, WIRE_IDENTITY_REPLY, EACCES, "disabled");
        else
                wire_reply_init(reply, WIRE_IDENTITY_REPLY, ENOENT, "not in the device scope");
        return 0;
}

static void start_auth_cache(Fixture *f) {
        _cleanup_free_ char *path = NULL;

        assert_true(asprintf(&path, "%s/run/auth-cache.sock", f->dir) > 0);
        f->auth_cache = test_serve_fork(path, auth_handler);
}

static bool bus_ready(void *userdata) {
        Fixture *f = userdata;
        /* Connected, and all four subscriptions made (manager_start()). */
        return bus_connected(f->m->bus) && f->broker.n_filters == 4;
}

/* auth-cache, a Manager, and the broker it is connected to: the daemon as it runs. */
static Manager *make_running(Fixture *f) {
        _cleanup_free_ char *path = NULL;
        Manager *m;

        start_auth_cache(f);
        m = make_manager(f);
        assert_true(asprintf(&path, "%s/run/broker.sock", f->dir) > 0);
        test_broker_start(&f->broker, m->event, path);
        f->broker_started = true;
        assert_int_equal(manager_start(m), 0);
        test_broker_run_until(m->event, bus_ready, f);
        return m;
}

/* A message the plugin (client: the device) or hub-store (client: the identity the cloud called) puts on the bus. */
static void send_bus(Fixture *f, const char *topic, const char *client, const char *payload) {
        test_broker_send(&f->broker, topic, client, payload, strlen(payload));
}

/* A message handed to the Manager as the bus would, for what the bus itself does not pass (no client). */
static void deliver_direct(Manager *m, const char *topic, const char *client, const void *payload, size_t len) {
        BusMessage msg = { .topic = topic, .payload = payload, .len = len, .client = client };
        manager_on_bus_message(m->bus, &msg, m);
}

/* A module's MQTT invocation of target with rid. */
static void invoke_bus(Fixture *f, const char *caller, const char *target, const char *rid, const char *body) {
        _cleanup_free_ char *topic = NULL;

        assert_true(asprintf(&topic, INVOKE_TOPIC "%s/?$rid=%s", target, rid) > 0);
        send_bus(f, topic, caller, body);
}

/* The n-th publish on topic for client, waited for. */
static const TestPublish *published(Fixture *f, const char *topic, const char *client, size_t n) {
        return test_broker_wait(&f->broker, topic, client, n);
}

/* The target's answer to the call p, through the bus. */
static void device_answers(Fixture *f, const TestPublish *p, int status, const char *payload) {
        _cleanup_free_ char *topic = NULL;

        assert_true(asprintf(&topic, BUS_PREFIX_DEVICE "methods/res/%d/?$rid=%s", status, test_publish_rid(p)) > 0);
        send_bus(f, topic, p->client, payload);
}

static void flush(Fixture *f) {
        test_broker_flush(&f->broker, f->m->bus);
}

static void assert_json_equal(const char *text, const char *expected) {
        json_auto_t *got = json_loads(text, JSON_DECODE_ANY, NULL), *e = json_loads(expected, JSON_DECODE_ANY, NULL);

        assert_non_null(e);
        if (!got || !json_equal(got, e))
                fail_msg("got %s, expected %s", text, expected);
}

static void assert_json_is(const json_t *j, const char *expected) {
        _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);

        assert_non_null(text);
        assert_json_equal(text, expected);
}

/* An error body's errorCode and message. */
static void assert_error_body(const char *body, const char *code, const char *message) {
        json_auto_t *j = json_loads(body, 0, NULL);
        const char *c = NULL, *text = NULL;

        assert_non_null(j);
        assert_int_equal(json_unpack(j, "{s:s, s:s}", "errorCode", &c, "message", &text), 0);
        assert_string_equal(c, code);
        if (message)
                assert_string_equal(text, message);
}

/* Sends a control request (type: WIRE_CONTROL_REQUEST unless another); its status, and its JSON or error. */
static int control(Manager *m, uint16_t type, const char *command, const char *identity, const char *argument,
                   char **ret_text) {
        FrameBuilder req = FRAME_BUILDER_NULL, out = FRAME_BUILDER_NULL;
        Frame reply;
        int status;

        frame_builder_init(&req, type);
        if (command)
                frame_builder_add_string(&req, WIRE_COMMAND, command);
        if (identity)
                frame_builder_add_string(&req, WIRE_IDENTITY, identity);
        if (argument)
                frame_builder_add_string(&req, WIRE_ARGUMENT, argument);
        test_handle(manager_handle_request, m, &req, &out, &reply);
        assert_int_equal(reply.type, type + 1);
        status = wire_reply_status(&reply);
        *ret_text = NULL;
        (void) frame_get_string(&reply, status == 0 ? WIRE_JSON : WIRE_ERROR, ret_text);
        frame_builder_deinit(&req);
        frame_builder_deinit(&out);
        return status;
}

/* A control command that must succeed, its JSON parsed. */
static json_t *control_json(Manager *m, const char *command, const char *identity, const char *argument) {
        _cleanup_free_ char *text = NULL;
        json_t *j;

        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, command, identity, argument, &text), 0);
        j = json_loads(text, 0, NULL);
        assert_non_null(j);
        return j;
}

/* hubctl methods invoke: the call's id. */
static json_int_t control_invoke(Manager *m, const char *target, const char *body) {
        json_auto_t *j = control_json(m, "invoke", target, body);
        json_int_t call = 0;

        assert_int_equal(json_unpack(j, "{s:I}", "call", &call), 0);
        assert_true(call > 0);
        return call;
}

static json_t *control_result(Manager *m, json_int_t call) {
        char id[32];

        snprintf(id, sizeof(id), "%lld", (long long) call);
        return control_json(m, "result", NULL, id);
}

/* One counter of "status". */
static json_int_t status_of(Manager *m, const char *key) {
        json_auto_t *j = control_json(m, "status", NULL, NULL);
        json_t *v = json_object_get(j, key);

        assert_true(json_is_integer(v));
        return json_integer_value(v);
}

/* invoke, then result: the finished call's JSON (an immediate refusal is finished at once). */
static json_t *invoke_and_fetch(Manager *m, const char *target) {
        char *text = NULL, id[32];
        json_int_t call = control_invoke(m, target, REQUEST);

        snprintf(id, sizeof(id), "%lld", (long long) call);
        json_t *j = control_result(m, call);
        /* Fetched once: the second ask finds nothing. */
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "result", NULL, id, &text), -EINVAL);
        assert_string_equal(text, "no such call (its result was fetched already, or expired)");
        free(text);
        return j;
}

/* ---- the control socket ---- */

static void test_control_commands(void **state) {
        Fixture *f = *state;
        Manager *m = make_manager(f);
        char *text = NULL;
        json_int_t in_flight = -1;
        int bus = -1;

        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "status", NULL, NULL, &text), 0);
        json_t *j = json_loads(text, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_unpack(j, "{s:b, s:I}", "bus", &bus, "calls_in_flight", &in_flight), 0);
        assert_int_equal(bus, 0);
        assert_int_equal(in_flight, 0);
        json_decref(j);
        free(text);

        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "reboot", NULL, NULL, &text), -EINVAL);
        assert_string_equal(text, "unknown command; known: status, invoke, result");
        free(text);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, NULL, NULL, NULL, &text), -EINVAL);
        assert_string_equal(text, "command is required");
        free(text);

        /* The caller's mistakes are EINVAL, with the sentence hubctl prints. */
        static const char *const no_target = "invoke needs the target as IDENTITY: {deviceId} or {deviceId}/{moduleId}";
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "invoke", NULL, REQUEST, &text), -EINVAL);
        assert_string_equal(text, no_target);
        free(text);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "invoke", "a/b/c", REQUEST, &text), -EINVAL);
        assert_string_equal(text, no_target);
        free(text);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "invoke", "", REQUEST, &text), -EINVAL);
        assert_string_equal(text, no_target);
        free(text);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "invoke", "dev1", NULL, &text), -EINVAL);
        assert_string_equal(text, "invoke needs the method request body as ARGUMENT");
        free(text);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "invoke", "dev1", "{\"payload\":1}", &text), -EINVAL);
        assert_string_equal(text, "methodName is required");
        free(text);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "invoke", "dev1", "not json", &text), -EINVAL);
        assert_string_equal(text, "the request body is not a JSON object");
        free(text);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "invoke", "dev1",
                                 "{\"methodName\":\"m\",\"responseTimeoutInSeconds\":1}", &text),
                         -EINVAL);
        free(text);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "result", NULL, "x", &text), -EINVAL);
        assert_string_equal(text, "result needs the call id as ARGUMENT");
        free(text);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "result", NULL, NULL, &text), -EINVAL);
        assert_string_equal(text, "result needs the call id as ARGUMENT");
        free(text);
        /* A call that never was. */
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "result", NULL, "42", &text), -EINVAL);
        assert_string_equal(text, "no such call (its result was fetched already, or expired)");
        free(text);
        /* None of these started anything. */
        assert_null(m->control_calls);
        assert_int_equal(m->calls.stats.started, 0);

        /* Other requests are not method-router's: answered, not closed. */
        assert_int_equal(control(m, WIRE_STORE_REQUEST, NULL, NULL, NULL, &text), -EOPNOTSUPP);
        assert_string_equal(text, "method-router answers control requests only");
        free(text);
}

/* A control request's rights: invoking and reading a result are an administrator's, status anyone's who may read. */
static void test_control_access(void **state) {
        Fixture *f = *state;
        Manager *m = make_manager(f);
        static const struct {
                const char *command;
                unsigned access;
        } cases[] = {
                { "invoke", PEER_ADMIN },
                { "result", PEER_ADMIN },
                { "status", PEER_READ },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                FrameBuilder b = FRAME_BUILDER_NULL;
                Frame req;

                frame_builder_init(&b, WIRE_CONTROL_REQUEST);
                frame_builder_add_string(&b, WIRE_COMMAND, cases[i].command);
                assert_int_equal(frame_builder_finish(&b), 0);
                assert_int_equal(frame_parse(&req, b.buf + FRAME_HEADER_SIZE, b.len - FRAME_HEADER_SIZE), 0);
                assert_int_equal(manager_request_access(m, &req), cases[i].access);
                frame_builder_deinit(&b);
        }
}

/* hubctl's call of target was refused at once: what "result" says of it. */
static void assert_refused(Manager *m, const char *target, int http_status, const char *code, const char *message) {
        json_auto_t *j = invoke_and_fetch(m, target);
        _cleanup_free_ char *expected = NULL;

        assert_true(asprintf(&expected, "{\"done\":true,\"httpStatus\":%d,\"errorCode\":\"%s\",\"message\":\"%s\"}",
                             http_status, code, message) > 0);
        assert_json_is(j, expected);
}

/* No auth-cache: the call ends at once as 503, and no call is left in flight. */
static void test_invoke_without_auth_cache(void **state) {
        Fixture *f = *state;
        Manager *m = make_manager(f);

        assert_refused(m, "dev1", 503, "ServiceUnavailable", "the gateway's auth-cache is not reachable");
        assert_int_equal(m->calls.n_calls, 0);
}

/* The target check asks whether the identity exists, never for its key (the stand-in closes on a key request). */
static void test_invoke_unknown_and_disabled_targets(void **state) {
        Fixture *f = *state;

        start_auth_cache(f);
        Manager *m = make_manager(f);

        assert_refused(m, "gone", 404, "DeviceNotFound", "'gone' is not a device or module in this gateway's scope");
        assert_refused(m, "off", 404, "DeviceNotFound", "'off' is disabled");
}

/* The target exists but the broker is not there: 503 at once, counted, nothing in flight. */
static void test_invoke_without_broker(void **state) {
        Fixture *f = *state;

        start_auth_cache(f);
        Manager *m = make_manager(f);

        assert_refused(m, "dev1", 503, "ServiceUnavailable", "the gateway's local broker is not reachable");
        assert_int_equal(status_of(m, "bus_down"), 1);
        assert_int_equal(status_of(m, "started"), 0);
        assert_int_equal(status_of(m, "calls_in_flight"), 0);
}

/* hubctl's call: "done": false while it runs, then the device's answer, once. */
static void test_control_invoke_answered(void **state) {
        Fixture *f = *state;
        Manager *m = make_running(f);
        json_int_t first, second;
        const TestPublish *p;
        json_t *j;

        f->broker.online[0] = "dev1";
        f->broker.online[1] = "dev1/mod";
        first = control_invoke(m, "dev1", REQUEST);
        second = control_invoke(m, "dev1/mod", "{\"methodName\":\"ping\"}");
        assert_int_not_equal(first, second);
        p = published(f, BUS_TOPIC_DELIVER, "dev1", 0);
        assert_string_equal(p->payload, "{\"delay\":1}");
        flush(f);

        j = control_result(m, first);
        assert_json_is(j, "{\"done\":false}");
        json_decref(j);
        assert_int_equal(status_of(m, "calls_in_flight"), 2);
        assert_int_equal(status_of(m, "started"), 2);

        device_answers(f, p, 200, "{\"rebooting\":true}");
        flush(f);
        j = invoke_and_fetch(m, "gone"); /* another call's refusal does not disturb these */
        json_decref(j);
        j = control_result(m, first);
        assert_json_is(j, "{\"done\":true,\"httpStatus\":200,\"status\":200,\"payload\":{\"rebooting\":true}}");
        json_decref(j);

        /* The other one, to a module, answered with no payload. */
        p = published(f, BUS_TOPIC_DELIVER, "dev1/mod", 0);
        assert_string_equal(p->payload, "null");
        device_answers(f, p, 204, "");
        flush(f);
        j = control_result(m, second);
        assert_json_is(j, "{\"done\":true,\"httpStatus\":200,\"status\":204,\"payload\":null}");
        json_decref(j);

        assert_int_equal(status_of(m, "answered"), 2);
        assert_int_equal(status_of(m, "calls_in_flight"), 0);
        assert_null(m->control_calls);
}

/* Results wait until fetched, so the table is bounded: the 65th call at once is refused until one is fetched. */
static void test_control_too_many_calls(void **state) {
        Fixture *f = *state;
        Manager *m = make_manager(f);
        json_int_t first = 0, last = 0;
        char *text = NULL;

        /* Without auth-cache each call ends at once (503); its result still takes a place until fetched. */
        for (unsigned i = 0; i < 64; i++) {
                last = control_invoke(m, "dev1", REQUEST);
                if (i == 0)
                        first = last;
        }
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "invoke", "dev1", REQUEST, &text), -EINVAL);
        assert_string_equal(text, "too many method calls from hubctl at once");
        free(text);

        json_decref(control_result(m, first));
        json_int_t again = control_invoke(m, "dev1", REQUEST);
        assert_true(again > last);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "invoke", "dev1", REQUEST, &text), -EINVAL);
        free(text);
}

/* ---- requests on the bus ---- */

/* A module's MQTT invocation reaches the target; the answer goes back to the module only, on its rid. */
static void test_bus_invoke_answered(void **state) {
        Fixture *f = *state;
        Manager *m = make_running(f);
        const TestPublish *call, *reply;

        f->broker.online[0] = "dev1/mod";
        invoke_bus(f, MODULE, "dev1/mod", "7", REQUEST);
        call = published(f, BUS_TOPIC_DELIVER, "dev1/mod", 0);
        assert_int_equal(strncmp(call->target, "$iothub/methods/POST/reboot/?$rid=",
                                 strlen("$iothub/methods/POST/reboot/?$rid=")),
                         0);
        assert_string_equal(call->payload, "{\"delay\":1}");

        device_answers(f, call, 201, "{\"ok\":true}");
        reply = published(f, BUS_TOPIC_DELIVER, MODULE, 0);
        assert_string_equal(reply->target, INVOKE_RES "200/?$rid=7");
        assert_json_equal(reply->payload, "{\"status\":201,\"payload\":{\"ok\":true}}");
        flush(f);
        assert_int_equal(test_broker_count(&f->broker, BUS_TOPIC_DELIVER, NULL), 2);
        assert_int_equal(test_broker_count(&f->broker, BUS_TOPIC_UPSTREAM, NULL), 0);
        assert_int_equal(m->calls.stats.answered, 1);
        assert_int_equal(m->calls.n_calls, 0);
}

/* Only the edge device's modules may call: everyone else gets 403, before their request is even read. */
static void test_bus_invoke_only_edge_modules(void **state) {
        Fixture *f = *state;
        Manager *m = make_running(f);
        static const char *const outsiders[] = { "leaf", "edge1", "dev1/mod", "edge10/mod" };
        char rid[16];

        f->broker.online[0] = "dev1";
        for (size_t i = 0; i < ELEMENTSOF(outsiders); i++) {
                _cleanup_free_ char *message = NULL;
                const TestPublish *reply;

                snprintf(rid, sizeof(rid), "r%zu", i);
                /* Well-formed, or not: the refusal is the same. */
                invoke_bus(f, outsiders[i], "dev1", rid, i % 2 ? "not json" : REQUEST);
                reply = published(f, BUS_TOPIC_DELIVER, outsiders[i], 0);
                assert_true(asprintf(&message, "only modules of edge device 'edge1' may invoke direct methods, not '%s'",
                                     outsiders[i]) > 0);
                assert_non_null(strstr(reply->target, INVOKE_RES "403/?$rid="));
                assert_string_equal(test_publish_rid(reply), rid);
                assert_error_body(reply->payload, "IotHubUnauthorizedAccess", message);
        }
        flush(f);
        assert_int_equal(test_broker_count(&f->broker, BUS_TOPIC_DELIVER, "dev1"), 0);
        assert_int_equal(m->calls.stats.started, 0);

        /* The same target, called by a module of the edge device, is called. */
        invoke_bus(f, "edge1/other", "dev1", "ok", REQUEST);
        published(f, BUS_TOPIC_DELIVER, "dev1", 0);
        assert_int_equal(m->calls.stats.started, 1);
}

static void test_caller_check(void **state) {
        Fixture *f = *state;
        Manager *m = make_manager(f);
        static const char *const allowed[] = { MODULE, "edge1/$edgeAgent" };
        static const char *const refused[] = { "edge1", "leaf", "dev1/mod", "edge1/mod/x", "", "Edge1/mod" };

        for (size_t i = 0; i < ELEMENTSOF(allowed); i++) {
                char *body = NULL;
                assert_int_equal(manager_caller_check(m, allowed[i], &body), 0);
                assert_null(body);
        }
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                _cleanup_free_ char *body = NULL;
                assert_int_equal(manager_caller_check(m, refused[i], &body), 403);
                assert_error_body(body, "IotHubUnauthorizedAccess", NULL);
        }
}

/* The cloud calls any identity of the scope (a leaf device too); the answer goes upstream as that identity. */
static void test_bus_cloud_call(void **state) {
        Fixture *f = *state;
        Manager *m = make_running(f);
        const TestPublish *call, *reply;

        f->broker.online[0] = "leaf";
        send_bus(f, BUS_PREFIX_CLOUD "methods/POST/reboot/?$rid=c1", "leaf", "{\"x\":1}");
        call = published(f, BUS_TOPIC_DELIVER, "leaf", 0);
        assert_int_equal(strncmp(call->target, "$iothub/methods/POST/reboot/?$rid=", 34), 0);
        assert_string_equal(call->payload, "{\"x\":1}");
        /* Not the cloud's rid: ours, so answers to two callers cannot be mixed up. */
        assert_string_not_equal(test_publish_rid(call), "c1");

        device_answers(f, call, 200, "{\"y\": 2}");
        reply = published(f, BUS_TOPIC_UPSTREAM, "leaf", 0);
        assert_string_equal(reply->target, "$iothub/methods/res/200/?$rid=c1");
        /* The device's payload as it sent it. */
        assert_string_equal(reply->payload, "{\"y\": 2}");

        /* No payload is a null payload for the device. */
        send_bus(f, BUS_PREFIX_CLOUD "methods/POST/ping/?$rid=c2", "leaf", "");
        call = published(f, BUS_TOPIC_DELIVER, "leaf", 1);
        assert_string_equal(call->payload, "null");
        assert_int_equal(m->calls.n_calls, 1);
        /* An empty answer goes up empty, as IoT Hub takes it. */
        device_answers(f, call, 200, "");
        reply = published(f, BUS_TOPIC_UPSTREAM, "leaf", 1);
        assert_string_equal(reply->target, "$iothub/methods/res/200/?$rid=c2");
        assert_int_equal(reply->len, 0);
        assert_int_equal(m->calls.n_calls, 0);
}

/* What the cloud is answered when the call cannot be made: an error body with IoT Hub's status, upstream. */
static void test_bus_cloud_call_errors(void **state) {
        Fixture *f = *state;
        Manager *m = make_running(f);
        const TestPublish *reply;

        send_bus(f, BUS_PREFIX_CLOUD "methods/POST/m/?$rid=bad", "leaf", "not json");
        reply = published(f, BUS_TOPIC_UPSTREAM, "leaf", 0);
        assert_string_equal(reply->target, "$iothub/methods/res/400/?$rid=bad");
        assert_error_body(reply->payload, "ArgumentInvalid", "the method payload is not JSON");

        send_bus(f, BUS_PREFIX_CLOUD "methods/POST/m/?$rid=gone", "gone", "{}");
        reply = published(f, BUS_TOPIC_UPSTREAM, "gone", 0);
        assert_string_equal(reply->target, "$iothub/methods/res/404/?$rid=gone");
        assert_error_body(reply->payload, "DeviceNotFound", "'gone' is not a device or module in this gateway's scope");

        /* In scope but not connected: the cloud does not wait (its own connectTimeout is upstream's). */
        send_bus(f, BUS_PREFIX_CLOUD "methods/POST/m/?$rid=off", "leaf", "{}");
        reply = published(f, BUS_TOPIC_UPSTREAM, "leaf", 1);
        assert_string_equal(reply->target, "$iothub/methods/res/404/?$rid=off");
        assert_error_body(reply->payload, "DeviceNotOnline", "'leaf' is not connected to the gateway");
        assert_int_equal(test_broker_count(&f->broker, BUS_TOPIC_DELIVER, "leaf"), 1);
        assert_int_equal(m->calls.n_calls, 0);
}

/* Two callers of one target: each answer goes to its own caller, whatever the order; strays change nothing. */
static void test_bus_answers_routed_by_rid(void **state) {
        Fixture *f = *state;
        Manager *m = make_running(f);
        const TestPublish *to_mod, *to_other, *reply;
        _cleanup_free_ char *topic = NULL;

        f->broker.online[0] = "dev1";
        invoke_bus(f, MODULE, "dev1", "same", "{\"methodName\":\"a\"}");
        to_mod = published(f, BUS_TOPIC_DELIVER, "dev1", 0);
        invoke_bus(f, "edge1/other", "dev1", "same", "{\"methodName\":\"b\"}");
        to_other = published(f, BUS_TOPIC_DELIVER, "dev1", 1);
        assert_non_null(strstr(to_mod->target, "/POST/a/"));
        assert_non_null(strstr(to_other->target, "/POST/b/"));

        /* Not ours, from someone else than the target, or a status for a rid never sent. */
        assert_true(asprintf(&topic, BUS_PREFIX_DEVICE "methods/res/200/?$rid=%s", test_publish_rid(to_mod)) > 0);
        send_bus(f, topic, "dev1/mod", "\"impostor\"");
        send_bus(f, BUS_PREFIX_DEVICE "methods/res/200/?$rid=nosuch-1", "dev1", "\"stray\"");
        flush(f);
        assert_int_equal(m->calls.stats.stray_answers, 2);
        assert_int_equal(m->calls.n_calls, 2);

        device_answers(f, to_other, 200, "\"to b\"");
        reply = published(f, BUS_TOPIC_DELIVER, "edge1/other", 0);
        assert_string_equal(reply->target, INVOKE_RES "200/?$rid=same");
        assert_json_equal(reply->payload, "{\"status\":200,\"payload\":\"to b\"}");

        device_answers(f, to_mod, 500, "\"to a\"");
        reply = published(f, BUS_TOPIC_DELIVER, MODULE, 0);
        assert_json_equal(reply->payload, "{\"status\":500,\"payload\":\"to a\"}");

        /* Answered once: the same answer again goes nowhere. */
        device_answers(f, to_mod, 500, "\"again\"");
        flush(f);
        assert_int_equal(test_broker_count(&f->broker, BUS_TOPIC_DELIVER, MODULE), 1);
        assert_int_equal(m->calls.stats.stray_answers, 3);
        assert_int_equal(m->calls.n_calls, 0);
}

/* Malformed messages are dropped (or refused to their sender) and the call in flight goes on as before. */
static void test_bus_malformed_messages(void **state) {
        Fixture *f = *state;
        Manager *m = make_running(f);
        const TestPublish *call, *reply;
        char *big;

        f->broker.online[0] = "dev1";
        invoke_bus(f, MODULE, "dev1", "live", REQUEST);
        call = published(f, BUS_TOPIC_DELIVER, "dev1", 0);

        /* Nobody to answer: dropped without a word. */
        static const struct {
                const char *topic, *client;
        } dropped[] = {
                { INVOKE_TOPIC "dev1/?$rid=1", NULL },              /* no client */
                { BUS_PREFIX_DEVICE "methods/res/200/?$rid=1", NULL },
                { BUS_PREFIX_DEVICE "methods/bogus/?$rid=1", MODULE },
                { BUS_PREFIX_DEVICE "methods/res/abc/?$rid=1", "dev1" },
                { BUS_PREFIX_DEVICE "methods/res/1000/?$rid=1", "dev1" },
                { BUS_PREFIX_DEVICE "methods/res/200/?$rid=a b", "dev1" },
                { BUS_PREFIX_DEVICE "methods/res/200/", "dev1" },
                { INVOKE_TOPIC "dev1/?$rid=", MODULE },
                { INVOKE_TOPIC "?$rid=1", MODULE },
                { BUS_PREFIX_DEVICE "methods/POST/m/?$rid=1", "dev1" }, /* only the cloud calls a device this way */
                { BUS_PREFIX_CLOUD "methods/res/200/?$rid=1", "leaf" },
                { BUS_PREFIX_CLOUD "methods/invoke/dev1/?$rid=1", "leaf" },
                { BUS_PREFIX_DEVICE "twin/GET/?$rid=1", "dev1" },
                { BUS_TOPIC_PRESENCE, "dev1" },
        };
        for (size_t i = 0; i < ELEMENTSOF(dropped); i++)
                deliver_direct(m, dropped[i].topic, dropped[i].client, REQUEST, strlen(REQUEST));
        /* Empty payloads, as libmosquitto hands them on (NULL): nothing to resend for, and a bad request. */
        deliver_direct(m, BUS_TOPIC_SUBSCRIBE, "dev1", NULL, 0);
        deliver_direct(m, INVOKE_TOPIC "dev1/?$rid=empty", MODULE, NULL, 0);
        reply = published(f, BUS_TOPIC_DELIVER, MODULE, 0);
        assert_string_equal(reply->target, INVOKE_RES "400/?$rid=empty");
        assert_error_body(reply->payload, "ArgumentInvalid", "the request body is not a JSON object");

        /* A module's bad request is refused to it, with the parser's sentence. */
        static const struct {
                const char *body;
                int status;
                const char *code, *message;
        } refused[] = {
                { "[1]", 400, "ArgumentInvalid", "the request body is not a JSON object" },
                { "{\"payload\":1}", 400, "ArgumentInvalid", "methodName is required" },
                { "{\"methodName\":\"a b\"}", 400, "ArgumentInvalid", NULL },
                { "{\"methodName\":\"m\",\"responseTimeoutInSeconds\":301}", 400, "ArgumentInvalid", NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                _cleanup_free_ char *status = NULL;
                invoke_bus(f, MODULE, "dev1", "bad", refused[i].body);
                reply = published(f, BUS_TOPIC_DELIVER, MODULE, i + 1);
                assert_true(asprintf(&status, INVOKE_RES "%d/?$rid=bad", refused[i].status) > 0);
                assert_string_equal(reply->target, status);
                assert_error_body(reply->payload, refused[i].code, refused[i].message);
        }
        big = malloc(METHOD_BODY_MAX + 2);
        assert_non_null(big);
        memset(big, ' ', METHOD_BODY_MAX + 1);
        big[METHOD_BODY_MAX + 1] = '\0';
        deliver_direct(m, INVOKE_TOPIC "dev1/?$rid=big", MODULE, big, METHOD_BODY_MAX + 1);
        free(big);
        reply = published(f, BUS_TOPIC_DELIVER, MODULE, ELEMENTSOF(refused) + 1);
        assert_string_equal(reply->target, INVOKE_RES "413/?$rid=big");
        assert_error_body(reply->payload, "MessageTooLarge", NULL);

        /* Nothing else was sent, nothing else started, and the live call is answered as usual. */
        flush(f);
        assert_int_equal(test_broker_count(&f->broker, BUS_TOPIC_DELIVER, "dev1"), 1);
        assert_int_equal(test_broker_count(&f->broker, BUS_TOPIC_UPSTREAM, NULL), 0);
        assert_int_equal(m->calls.stats.started, 1);
        assert_int_equal(m->calls.n_calls, 1);
        device_answers(f, call, 200, "{}");
        reply = published(f, BUS_TOPIC_DELIVER, MODULE, ELEMENTSOF(refused) + 2);
        assert_string_equal(reply->target, INVOKE_RES "200/?$rid=live");
        assert_int_equal(m->calls.stats.answered, 1);
}

/* connectTimeoutInSeconds: the call waits for the target and goes out when it subscribes (the plugin's message). */
static void test_bus_invoke_waits_for_target(void **state) {
        Fixture *f = *state;
        Manager *m = make_running(f);
        const TestPublish *first, *again, *reply;

        invoke_bus(f, MODULE, "dev1", "w", "{\"methodName\":\"m\",\"connectTimeoutInSeconds\":60}");
        first = published(f, BUS_TOPIC_DELIVER, "dev1", 0);
        flush(f);
        assert_int_equal(m->calls.n_calls, 1);

        /* Another client's subscription, or the target's to twins, does not send it again. */
        send_bus(f, BUS_TOPIC_SUBSCRIBE, "leaf", "$iothub/methods/POST/#");
        send_bus(f, BUS_TOPIC_SUBSCRIBE, "dev1", "$iothub/twin/res/#");
        flush(f);
        assert_int_equal(test_broker_count(&f->broker, BUS_TOPIC_DELIVER, "dev1"), 1);

        f->broker.online[0] = "dev1";
        send_bus(f, BUS_TOPIC_SUBSCRIBE, "dev1", "$iothub/methods/POST/#");
        again = published(f, BUS_TOPIC_DELIVER, "dev1", 1);
        assert_string_equal(again->target, first->target);
        device_answers(f, again, 200, "1");
        reply = published(f, BUS_TOPIC_DELIVER, MODULE, 0);
        assert_json_equal(reply->payload, "{\"status\":200,\"payload\":1}");
        assert_int_equal(m->calls.stats.not_connected, 0);
}

static bool is_answered(void *userdata) {
        Manager *m = userdata;
        return m->calls.n_calls == 0;
}

/* responseTimeoutInSeconds ends a call for both kinds of local callers; the late answer then goes nowhere. */
static void test_response_timeout(void **state) {
        Fixture *f = *state;
        Manager *m = make_running(f);
        static const char body[] = "{\"methodName\":\"slow\",\"responseTimeoutInSeconds\":5}";
        const TestPublish *late, *reply;
        json_int_t id;
        json_t *j;

        f->broker.online[0] = "dev1";
        id = control_invoke(m, "dev1", body);
        invoke_bus(f, MODULE, "dev1", "slow", body);
        late = published(f, BUS_TOPIC_DELIVER, "dev1", 1);
        test_broker_run_until(m->event, is_answered, m);

        reply = published(f, BUS_TOPIC_DELIVER, MODULE, 0);
        assert_string_equal(reply->target, INVOKE_RES "504/?$rid=slow");
        assert_error_body(reply->payload, "GatewayTimeout", "'dev1' did not answer method 'slow' within 5 s");
        j = control_result(m, id);
        assert_json_is(j, "{\"done\":true,\"httpStatus\":504,\"errorCode\":\"GatewayTimeout\","
                          "\"message\":\"'dev1' did not answer method 'slow' within 5 s\"}");
        json_decref(j);

        device_answers(f, late, 200, "{}");
        device_answers(f, test_broker_find(&f->broker, BUS_TOPIC_DELIVER, "dev1", 0), 200, "{}");
        flush(f);
        assert_int_equal(test_broker_count(&f->broker, BUS_TOPIC_DELIVER, MODULE), 1);
        assert_int_equal(status_of(m, "timed_out"), 2);
        assert_int_equal(status_of(m, "stray_answers"), 2);
        assert_int_equal(status_of(m, "answered"), 0);
}

/* Calls in flight from every front end, and results nobody fetched, when the daemon stops (ASan sees leaks). */
static void test_free_with_calls_in_flight(void **state) {
        Fixture *f = *state;
        Manager *m = make_running(f);

        f->broker.online[0] = "dev1";
        invoke_bus(f, MODULE, "dev1", "1", REQUEST);
        send_bus(f, BUS_PREFIX_CLOUD "methods/POST/m/?$rid=2", "dev1", "{}");
        (void) control_invoke(m, "dev1", REQUEST);
        (void) control_invoke(m, "gone", REQUEST);
        published(f, BUS_TOPIC_DELIVER, "dev1", 2);
        assert_int_equal(m->calls.n_calls, 3);
        assert_int_equal(status_of(m, "calls_in_flight"), 3);
        /* The teardown frees them. */
}

/* ---- what the HTTPS front end shares ---- */

static void test_result_reply(void **state) {
        _cleanup_free_ char *answered = NULL, *empty = NULL, *failed = NULL;

        CallResult r = { .outcome = CALL_ANSWERED, .http_status = 200, .device_status = 404, .payload = "[1, 2]",
                         .len = 6 };
        assert_int_equal(manager_result_reply(&r, &answered), 200);
        assert_json_equal(answered, "{\"status\":404,\"payload\":[1,2]}");

        r.payload = "";
        r.len = 0;
        assert_int_equal(manager_result_reply(&r, &empty), 200);
        assert_json_equal(empty, "{\"status\":404,\"payload\":null}");

        r = (CallResult){ .outcome = CALL_TIMED_OUT, .http_status = 504, .error_code = "GatewayTimeout",
                          .error_text = "'d' did not answer" };
        assert_int_equal(manager_result_reply(&r, &failed), 504);
        /* "Message" is what the Azure SDKs show. */
        assert_json_equal(failed, "{\"errorCode\":\"GatewayTimeout\",\"message\":\"'d' did not answer\","
                                  "\"Message\":\"ErrorCode:GatewayTimeout;'d' did not answer\"}");
}

/* The listener's configuration is checked before anything listens; methods.port 0 is the control socket alone. */
static void test_listen_https_settings(void **state) {
        Fixture *f = *state;
        Manager *m = make_manager(f);
        _cleanup_free_ char *sock = NULL, *big = NULL;
        struct stat st;
        FILE *file;

        assert_int_equal(m->config->methods_port, 0);
        assert_int_equal(manager_listen(m), 0);
        assert_null(m->http);
        assert_true(asprintf(&sock, "%s/run/method-router.sock", f->dir) > 0);
        assert_int_equal(stat(sock, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));

        /* http_server_new() itself, as manager_listen() calls it with a port. */
        m->config->methods_port = 1;
        free(m->config->tls_cert_file);
        free(m->config->tls_key_file);
        assert_true(asprintf(&m->config->tls_cert_file, "%s/missing.pem", f->dir) > 0);
        assert_true(asprintf(&m->config->tls_key_file, "%s/missing-key.pem", f->dir) > 0);
        assert_int_equal(http_server_new(&m->http, m), -ENOENT);

        /* A "PEM" larger than any certificate is refused, not read whole. */
        assert_true(asprintf(&big, "%s/big.pem", f->dir) > 0);
        file = fopen(big, "we");
        assert_non_null(file);
        assert_int_equal(fseek(file, 1024 * 1024, SEEK_SET), 0);
        assert_int_equal(fputc('x', file), 'x');
        assert_int_equal(fclose(file), 0);
        free(m->config->tls_cert_file);
        m->config->tls_cert_file = strdup(big);
        assert_int_equal(http_server_new(&m->http, m), -EFBIG);

        /* Not a numeric address. */
        free(m->config->methods_bind);
        m->config->methods_bind = strdup("localhost");
        assert_int_equal(http_server_new(&m->http, m), -EINVAL);
        assert_null(m->http);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_control_commands, setup, teardown),
                cmocka_unit_test_setup_teardown(test_control_access, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invoke_without_auth_cache, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invoke_unknown_and_disabled_targets, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invoke_without_broker, setup, teardown),
                cmocka_unit_test_setup_teardown(test_control_invoke_answered, setup, teardown),
                cmocka_unit_test_setup_teardown(test_control_too_many_calls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bus_invoke_answered, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bus_invoke_only_edge_modules, setup, teardown),
                cmocka_unit_test_setup_teardown(test_caller_check, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bus_cloud_call, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bus_cloud_call_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bus_answers_routed_by_rid, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bus_malformed_messages, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bus_invoke_waits_for_target, setup, teardown),
                cmocka_unit_test_setup_teardown(test_response_timeout, setup, teardown),
                cmocka_unit_test_setup_teardown(test_free_with_calls_in_flight, setup, teardown),
                cmocka_unit_test(test_result_reply),
                cmocka_unit_test_setup_teardown(test_listen_https_settings, setup, teardown),
        };

        log_set_max_level(LOG_CRIT);
        test_block_daemon_signals();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
