/* Tests of method-router's core without the bus: control commands and the target check against a stand-in auth-cache */
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

#include "method-router/manager.h"
#include "proto/ipc/server.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/runtime/test-daemon.h"
#include "proto/util/cleanup.h"

#define REQUEST "{\"methodName\":\"reboot\",\"payload\":{\"delay\":1}}"

typedef struct Fixture {
        char *dir;
        pid_t auth_cache; /* the stand-in, or 0 */
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        f->dir = test_scratch_new("method-router");
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        if (f->auth_cache > 0) {
                kill(f->auth_cache, SIGKILL);
                waitpid(f->auth_cache, NULL, 0);
        }
        test_scratch_remove(f->dir);
        free(f);
        return 0;
}

static Manager *make_manager(Fixture *f) {
        Config *config = test_config_new(f->dir);
        Manager *m = NULL;

        assert_int_equal(manager_new(&m, &config), 0);
        return m;
}

/* The stand-in auth-cache: identity queries only; a key request closes the connection. */
static int auth_handler(void *userdata, const Frame *request, FrameBuilder *reply) {
        _cleanup_free_ char *identity = NULL;

        if (request->type != WIRE_IDENTITY_REQUEST || frame_get_string(request, WIRE_IDENTITY, &identity) < 0)
                return -EBADMSG;
        if (strcmp(identity, "off") == 0)
                wire_reply_init(reply, WIRE_IDENTITY_REPLY, EACCES, "disabled");
        else
                wire_reply_init(reply, WIRE_IDENTITY_REPLY, ENOENT, "not in the device scope");
        return 0;
}

static void start_auth_cache(Fixture *f) {
        char path[128];

        snprintf(path, sizeof(path), "%s/run", f->dir);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/run/auth-cache.sock", f->dir);
        f->auth_cache = test_serve_fork(path, auth_handler);
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

/* invoke, then result: the finished call's JSON (an immediate refusal is finished at once). */
static json_t *invoke_and_fetch(Manager *m, const char *target) {
        char *text = NULL, id[32];
        json_int_t call = 0;

        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "invoke", target, REQUEST, &text), 0);
        json_t *j = json_loads(text, 0, NULL);
        assert_non_null(j);
        assert_int_equal(json_unpack(j, "{s:I}", "call", &call), 0);
        json_decref(j);
        free(text);

        snprintf(id, sizeof(id), "%lld", (long long) call);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "result", NULL, id, &text), 0);
        j = json_loads(text, 0, NULL);
        assert_non_null(j);
        free(text);
        /* Fetched once: the second ask finds nothing. */
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "result", NULL, id, &text), -EINVAL);
        assert_string_equal(text, "no such call (its result was fetched already, or expired)");
        free(text);
        return j;
}

static void test_control_commands(void **state) {
        Fixture *f = *state;
        _cleanup_(manager_freep) Manager *m = make_manager(f);
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
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "invoke", NULL, REQUEST, &text), -EINVAL);
        assert_string_equal(text, "invoke needs the target as IDENTITY: {deviceId} or {deviceId}/{moduleId}");
        free(text);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "invoke", "dev1", NULL, &text), -EINVAL);
        assert_string_equal(text, "invoke needs the method request body as ARGUMENT");
        free(text);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "invoke", "dev1", "{\"payload\":1}", &text), -EINVAL);
        free(text);
        assert_int_equal(control(m, WIRE_CONTROL_REQUEST, "result", NULL, "x", &text), -EINVAL);
        assert_string_equal(text, "result needs the call id as ARGUMENT");
        free(text);

        /* Other requests are not method-router's: answered, not closed. */
        assert_int_equal(control(m, WIRE_STORE_REQUEST, NULL, NULL, NULL, &text), -EOPNOTSUPP);
        assert_string_equal(text, "method-router answers control requests only");
        free(text);
}

/* No auth-cache: the call ends at once as 503, and no call is left in flight. */
static void test_invoke_without_auth_cache(void **state) {
        Fixture *f = *state;
        _cleanup_(manager_freep) Manager *m = make_manager(f);
        const char *code = NULL;
        int http = 0, done = 0;

        json_t *j = invoke_and_fetch(m, "dev1");
        assert_int_equal(json_unpack(j, "{s:b, s:i, s:s}", "done", &done, "httpStatus", &http, "errorCode", &code), 0);
        assert_true(done);
        assert_int_equal(http, 503);
        assert_string_equal(code, "ServiceUnavailable");
        json_decref(j);
        assert_int_equal(m->calls.n_calls, 0);
}

/* The target check asks whether the identity exists, never for its key (the stand-in closes on a key request). */
static void test_invoke_unknown_and_disabled_targets(void **state) {
        Fixture *f = *state;
        const char *code = NULL, *message = NULL;
        int http = 0;

        start_auth_cache(f);
        _cleanup_(manager_freep) Manager *m = make_manager(f);

        json_t *j = invoke_and_fetch(m, "gone");
        assert_int_equal(json_unpack(j, "{s:i, s:s, s:s}", "httpStatus", &http, "errorCode", &code, "message", &message), 0);
        assert_int_equal(http, 404);
        assert_string_equal(code, "DeviceNotFound");
        assert_string_equal(message, "'gone' is not a device or module in this gateway's scope");
        json_decref(j);

        j = invoke_and_fetch(m, "off");
        assert_int_equal(json_unpack(j, "{s:i, s:s, s:s}", "httpStatus", &http, "errorCode", &code, "message", &message), 0);
        assert_int_equal(http, 404);
        assert_string_equal(code, "DeviceNotFound");
        assert_string_equal(message, "'off' is disabled");
        json_decref(j);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_control_commands, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invoke_without_auth_cache, setup, teardown),
                cmocka_unit_test_setup_teardown(test_invoke_unknown_and_disabled_targets, setup, teardown),
        };

        log_set_max_level(LOG_CRIT);
        test_block_daemon_signals();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
