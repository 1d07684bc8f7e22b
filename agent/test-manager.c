/* Tests of the agent's core without modules running: the control table, and module keys from a stand-in auth-cache */
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

#include <cmocka.h>
#include <jansson.h>

#include "agent/manager.h"
#include "proto/auth-client.h"
#include "proto/cleanup.h"
#include "proto/client.h"
#include "proto/log.h"
#include "proto/test-daemon.h"
#include "proto/wire.h"

static Manager *make_manager(const char *dir) {
        Config *config = test_config_new(dir);
        Manager *m = NULL;

        assert_int_equal(manager_new(&m, &config), 0);
        return m;
}

/* A control command's status, and its JSON or error text. */
static int control(Manager *m, const char *command, const char *argument, char **ret_text) {
        return test_control_command(manager_handle_request, m, command, argument, ret_text);
}

static void test_control_commands(void **state) {
        _cleanup_(manager_freep) Manager *m = make_manager(*state);
        char *text;

        assert_int_equal(control(m, "modules", NULL, &text), 0);
        assert_string_equal(text, "{\"modules\":[]}");
        free(text);
        assert_int_equal(control(m, "deploy", NULL, &text), -EINVAL);
        assert_string_equal(text, "a manifest is required");
        free(text);
        /* A manifest that does not parse is refused, and nothing is deployed. */
        assert_int_equal(control(m, "deploy", "{\"modulesContent\": 1", &text), -EINVAL);
        free(text);
        assert_int_equal(m->n_modules, 0);
        assert_int_equal(control(m, "restart", NULL, &text), -EINVAL);
        assert_string_equal(text, "unknown command; known: modules, deployment, deploy");
        free(text);
}

/* The stand-in auth-cache: a key, a signer (an X.509 identity has no key), or no such identity. */
static int auth_handler(void *userdata, const Frame *request, FrameBuilder *reply) {
        _cleanup_free_ char *identity = NULL;

        if (request->type != WIRE_KEY_REQUEST || frame_get_string(request, WIRE_IDENTITY, &identity) < 0)
                return -EBADMSG;
        if (strcmp(identity, "edge1/mod") == 0) {
                wire_reply_init(reply, WIRE_KEY_REPLY, 0, NULL);
                frame_builder_add_string(reply, WIRE_KEY, "a2V5");
        } else if (strcmp(identity, "edge1/x509") == 0) {
                wire_reply_init(reply, WIRE_KEY_REPLY, 0, NULL);
                frame_builder_add_string(reply, WIRE_IDENTITY, "edge1/$edgeHub");
        } else
                wire_reply_init(reply, WIRE_KEY_REPLY, ENOENT, "not in the device scope");
        return 0;
}

static void test_module_keys(void **state) {
        const char *dir = *state;
        _cleanup_(manager_freep) Manager *m = make_manager(dir);
        _cleanup_free_ char *run = NULL, *path = NULL;
        char *key = NULL;

        assert_true(asprintf(&run, "%s/run", dir) > 0);
        assert_true(asprintf(&path, "%s/auth-cache.sock", run) > 0);
        assert_int_equal(frame_client_init(&m->auth_cache, path), 0);

        /* auth-cache not running: refused, which must not read as "no such identity". */
        assert_int_equal(manager_fetch_module_key(m, "edge1/mod", &key), -ECONNREFUSED);

        assert_int_equal(mkdir(run, 0755), 0);
        pid_t pid = test_serve_fork(path, auth_handler);

        assert_int_equal(manager_fetch_module_key(m, "edge1/mod", &key), 0);
        assert_string_equal(key, "a2V5");
        auth_key_freep(&key);
        /* A module needs a key of its own: a signer on its behalf is no answer for it. */
        assert_int_equal(manager_fetch_module_key(m, "edge1/x509", &key), -EBADMSG);
        assert_null(key);
        assert_int_equal(manager_fetch_module_key(m, "edge1/gone", &key), -ENOENT);
        assert_null(key);

        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_control_commands, test_scratch_setup, test_scratch_teardown),
                cmocka_unit_test_setup_teardown(test_module_keys, test_scratch_setup, test_scratch_teardown),
        };

        log_set_max_level(LOG_CRIT);
        test_block_daemon_signals();
        return cmocka_run_group_tests(tests, NULL, NULL);
}
