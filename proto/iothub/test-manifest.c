/* Unit tests: the deployment manifest ($edgeAgent desired properties) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "proto/iothub/manifest.h"
#include "proto/util/cleanup.h"

#define SYSTEM                                                                                                  \
        "\"runtime\": {\"type\": \"process\", \"settings\": {}},"                                              \
        "\"systemModules\": {\"edgeAgent\": {\"type\": \"process\", \"settings\": {}},"                       \
        "                    \"edgeHub\": {\"type\": \"process\", \"status\": \"running\","                   \
        "                                  \"restartPolicy\": \"always\", \"settings\": {},"                  \
        "                                  \"env\": {\"UpstreamProtocol\": {\"value\": \"Mqtt\"},"            \
        "                                            \"storageFolder\": {\"value\": \"/var/lib/x\"}}}}"

static int parse(const char *json, Manifest **ret, char **ret_error) {
        return manifest_parse(json, strlen(json), ret, ret_error);
}

static void test_schema_1_0(void **state) {
        _cleanup_(manifest_freep) Manifest *m = NULL;
        char *error = NULL;
        (void) state;

        assert_int_equal(parse("{\"schemaVersion\": \"1.0\", " SYSTEM ","
                               " \"modules\": {\"sample\": {\"version\": \"1.0\", \"type\": \"process\","
                               "   \"status\": \"running\", \"restartPolicy\": \"on-failure\","
                               "   \"settings\": {\"path\": \"/usr/bin/node\", \"args\": [\"m.js\", \"--x\"]},"
                               "   \"env\": {\"A\": {\"value\": \"1\"}, \"B_2\": {\"value\": \"\"}}},"
                               "  \"sink\": {\"type\": \"process\", \"status\": \"stopped\", \"restartPolicy\": \"never\","
                               "   \"settings\": {\"path\": \"/bin/true\"}}},"
                               " \"$version\": 7, \"$metadata\": {\"x\": 1}}",
                               &m, &error),
                         0);
        assert_null(error);
        assert_string_equal(m->schema_version, "1.0");
        assert_int_equal(m->version, 7);
        assert_string_equal(m->upstream_protocol, "Mqtt");
        assert_string_equal(m->storage_folder, "/var/lib/x");
        assert_int_equal(m->n_modules, 2);
        /* Same startupOrder (none): by name. */
        const ManifestModule *sample = manifest_find(m, "sample"), *sink = manifest_find(m, "sink");
        assert_ptr_equal(sample, &m->modules[0]);
        assert_ptr_equal(sink, &m->modules[1]);
        assert_string_equal(sample->version, "1.0");
        assert_int_equal(sample->status, MODULE_STATUS_RUNNING);
        assert_int_equal(sample->restart_policy, RESTART_ON_FAILURE);
        assert_string_equal(sample->path, "/usr/bin/node");
        assert_int_equal(sample->n_args, 2);
        assert_string_equal(sample->args[0], "m.js");
        assert_string_equal(sample->args[1], "--x");
        assert_null(sample->args[2]);
        assert_int_equal(sample->n_env, 2);
        assert_string_equal(sample->env[0].name, "A");
        assert_string_equal(sample->env[0].value, "1");
        assert_string_equal(sample->env[1].name, "B_2");
        assert_string_equal(sample->env[1].value, "");
        assert_int_equal(sink->status, MODULE_STATUS_STOPPED);
        assert_int_equal(sink->restart_policy, RESTART_NEVER);
        assert_int_equal(sink->n_args, 0);
        assert_null(sink->version);
        assert_null(manifest_find(m, "other"));
}

static void test_schema_1_1(void **state) {
        _cleanup_(manifest_freep) Manifest *m = NULL;
        char *error = NULL;
        (void) state;

        /* startupOrder sorts; modules may be absent or empty; IoT Edge's docker runtime block is accepted. */
        assert_int_equal(parse("{\"schemaVersion\": \"1.1\", \"runtime\": {\"type\": \"docker\", \"settings\": {\"minDockerVersion\": \"v1.25\"}},"
                               " \"systemModules\": {\"edgeAgent\": {\"type\": \"docker\", \"settings\": {\"image\": \"x\"}},"
                               "   \"edgeHub\": {\"type\": \"docker\", \"status\": \"running\", \"restartPolicy\": \"always\","
                               "     \"settings\": {\"image\": \"y\"}, \"startupOrder\": 0}},"
                               " \"modules\": {"
                               "  \"b\": {\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\","
                               "         \"startupOrder\": 2, \"settings\": {\"path\": \"/bin/b\"}},"
                               "  \"a\": {\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"on-unhealthy\","
                               "         \"startupOrder\": 1, \"settings\": {\"path\": \"/bin/a\"}},"
                               "  \"c\": {\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\","
                               "         \"settings\": {\"path\": \"/bin/c\"}}}}",
                               &m, &error),
                         0);
        assert_null(error);
        assert_string_equal(m->schema_version, "1.1");
        assert_int_equal(m->version, -1);
        assert_null(m->upstream_protocol);
        assert_int_equal(m->n_modules, 3);
        assert_string_equal(m->modules[0].name, "a");
        assert_int_equal(m->modules[0].startup_order, 1);
        assert_int_equal(m->modules[0].restart_policy, RESTART_ON_UNHEALTHY);
        assert_string_equal(m->modules[1].name, "b");
        assert_string_equal(m->modules[2].name, "c");
        assert_int_equal(m->modules[2].startup_order, UINT32_MAX);
        m = manifest_free(m);

        assert_int_equal(parse("{\"schemaVersion\": \"1.1\", " SYSTEM ", \"modules\": {}}", &m, &error), 0);
        assert_int_equal(m->n_modules, 0);
        m = manifest_free(m);
        assert_int_equal(parse("{\"schemaVersion\": \"1.1\", " SYSTEM "}", &m, &error), 0);
        assert_int_equal(m->n_modules, 0);
}

typedef struct Bad {
        const char *what;
        const char *json;
        const char *error;
} Bad;

#define MOD(body) "{\"schemaVersion\": \"1.0\", " SYSTEM ", \"modules\": {\"m\": " body "}}"
#define GOOD_SETTINGS "\"settings\": {\"path\": \"/bin/true\"}"

static const Bad bad[] = {
        { "not JSON", "{\"schemaVersion\": ", "not valid JSON: line 1 column 18: unexpected token near end of file" },
        { "not an object", "[1]", "manifest: expected an object, got an array" },
        { "empty", "", NULL },
        /* Every required key missing. */
        { "no schemaVersion", "{" SYSTEM "}", "manifest: missing required key 'schemaVersion'" },
        { "no runtime", "{\"schemaVersion\": \"1.0\", \"systemModules\": {}}", "manifest: missing required key 'runtime'" },
        { "no runtime.type", "{\"schemaVersion\": \"1.0\", \"runtime\": {}}", "runtime: missing required key 'type'" },
        { "no systemModules", "{\"schemaVersion\": \"1.0\", \"runtime\": {\"type\": \"process\"}}",
          "manifest: missing required key 'systemModules'" },
        { "no edgeAgent", "{\"schemaVersion\": \"1.0\", \"runtime\": {\"type\": \"process\"}, \"systemModules\": {}}",
          "systemModules: missing required key 'edgeAgent'" },
        { "no edgeAgent.type",
          "{\"schemaVersion\": \"1.0\", \"runtime\": {\"type\": \"process\"}, \"systemModules\": {\"edgeAgent\": {}}}",
          "systemModules.edgeAgent: missing required key 'type'" },
        { "no edgeHub",
          "{\"schemaVersion\": \"1.0\", \"runtime\": {\"type\": \"process\"}, \"systemModules\": {\"edgeAgent\": {\"type\": \"process\"}}}",
          "systemModules: missing required key 'edgeHub'" },
        { "no edgeHub.type",
          "{\"schemaVersion\": \"1.0\", \"runtime\": {\"type\": \"process\"}, \"systemModules\": {\"edgeAgent\": {\"type\": \"process\"},"
          " \"edgeHub\": {\"status\": \"running\", \"restartPolicy\": \"always\"}}}",
          "systemModules.edgeHub: missing required key 'type'" },
        { "no edgeHub.status",
          "{\"schemaVersion\": \"1.0\", \"runtime\": {\"type\": \"process\"}, \"systemModules\": {\"edgeAgent\": {\"type\": \"process\"},"
          " \"edgeHub\": {\"type\": \"process\", \"restartPolicy\": \"always\"}}}",
          "systemModules.edgeHub: missing required key 'status'" },
        { "no edgeHub.restartPolicy",
          "{\"schemaVersion\": \"1.0\", \"runtime\": {\"type\": \"process\"}, \"systemModules\": {\"edgeAgent\": {\"type\": \"process\"},"
          " \"edgeHub\": {\"type\": \"process\", \"status\": \"running\"}}}",
          "systemModules.edgeHub: missing required key 'restartPolicy'" },
        { "no module type", MOD("{\"status\": \"running\", \"restartPolicy\": \"always\", " GOOD_SETTINGS "}"),
          "modules.m: missing required key 'type'" },
        { "no module status", MOD("{\"type\": \"process\", \"restartPolicy\": \"always\", " GOOD_SETTINGS "}"),
          "modules.m: missing required key 'status'" },
        { "no module restartPolicy", MOD("{\"type\": \"process\", \"status\": \"running\", " GOOD_SETTINGS "}"),
          "modules.m: missing required key 'restartPolicy'" },
        { "no module settings", MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\"}"),
          "modules.m: missing required key 'settings'" },
        { "no settings.path",
          MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\", \"settings\": {\"args\": []}}"),
          "modules.m.settings: missing required key 'path'" },
        { "no env value",
          MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\", " GOOD_SETTINGS
              ", \"env\": {\"A\": {}}}"),
          "modules.m.env.A: missing required key 'value'" },
        /* Wrong types. */
        { "schemaVersion a number", "{\"schemaVersion\": 1.0}", "manifest.schemaVersion: expected a string, got a number" },
        { "runtime a string", "{\"schemaVersion\": \"1.0\", \"runtime\": \"process\"}",
          "manifest.runtime: expected an object, got a string" },
        { "modules an array", "{\"schemaVersion\": \"1.0\", " SYSTEM ", \"modules\": []}",
          "manifest.modules: expected an object, got an array" },
        { "module a string", MOD("\"x\""), "modules.m: expected an object, got a string" },
        { "type a number", MOD("{\"type\": 1, \"status\": \"running\", \"restartPolicy\": \"always\", " GOOD_SETTINGS "}"),
          "modules.m.type: expected a string, got a number" },
        { "status a bool", MOD("{\"type\": \"process\", \"status\": true, \"restartPolicy\": \"always\", " GOOD_SETTINGS "}"),
          "modules.m.status: expected a string, got a boolean" },
        { "settings a string",
          MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\", \"settings\": \"/bin/x\"}"),
          "modules.m.settings: expected an object, got a string" },
        { "path null",
          MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\", \"settings\": {\"path\": null}}"),
          "modules.m.settings.path: expected a string, got null" },
        { "args a string",
          MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\", \"settings\": {\"path\": \"/x\", \"args\": \"-v\"}}"),
          "modules.m.settings.args: expected an array of strings, got a string" },
        { "args with a number",
          MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\", \"settings\": {\"path\": \"/x\", \"args\": [\"a\", 2]}}"),
          "modules.m.settings.args[1]: expected a string, got a number" },
        { "env value a number",
          MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\", " GOOD_SETTINGS
              ", \"env\": {\"A\": {\"value\": 3}}}"),
          "modules.m.env.A.value: expected a string, got a number" },
        { "env entry a string",
          MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\", " GOOD_SETTINGS
              ", \"env\": {\"A\": \"3\"}}"),
          "modules.m.env.A: expected {\"value\": ...}, got a string" },
        { "startupOrder a string", "{\"schemaVersion\": \"1.1\", " SYSTEM ", \"modules\": {\"m\": {\"type\": \"process\","
          " \"status\": \"running\", \"restartPolicy\": \"always\", \"startupOrder\": \"1\", " GOOD_SETTINGS "}}}",
          "modules.m.startupOrder: expected an integer 0..4294967295" },
        { "$version a string", "{\"schemaVersion\": \"1.0\", " SYSTEM ", \"$version\": \"3\"}",
          "$version: expected a non-negative integer" },
        /* Bad values. */
        { "schema 2.0", "{\"schemaVersion\": \"2.0\"}", "unsupported schemaVersion '2.0' (1.0 or 1.1)" },
        { "startupOrder in 1.0", MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\","
                                     " \"startupOrder\": 1, " GOOD_SETTINGS "}"),
          "modules.m.startupOrder: not in schemaVersion 1.0 (use 1.1)" },
        { "docker module", MOD("{\"type\": \"docker\", \"status\": \"running\", \"restartPolicy\": \"always\","
                               " \"settings\": {\"image\": \"mcr.microsoft.com/x\"}}"),
          "module 'm' is of type docker: this runtime has no container engine (use type process with settings.path)" },
        { "unknown type", MOD("{\"type\": \"vm\", \"status\": \"running\", \"restartPolicy\": \"always\", " GOOD_SETTINGS "}"),
          "module 'm': unknown type 'vm' (this runtime runs type process)" },
        { "bad restart policy",
          MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"sometimes\", " GOOD_SETTINGS "}"),
          "modules.m.restartPolicy: 'sometimes' is not never, on-failure, on-unhealthy or always" },
        { "bad status", MOD("{\"type\": \"process\", \"status\": \"paused\", \"restartPolicy\": \"always\", " GOOD_SETTINGS "}"),
          "modules.m.status: 'paused' is not running or stopped" },
        { "relative path",
          MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\", \"settings\": {\"path\": \"bin/x\"}}"),
          "modules.m.settings.path: must be an absolute path" },
        { "image instead of path",
          MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\", \"settings\": {\"image\": \"x\"}}"),
          "modules.m.settings: unknown key 'image' (a process module has path, args and connectionString)" },
        { "connectionString not a boolean",
          MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\", \"settings\": "
              "{\"path\": \"/bin/x\", \"connectionString\": \"yes\"}}"),
          "modules.m.settings.connectionString: expected true or false, got a string" },
        { "bad env name",
          MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\", " GOOD_SETTINGS
              ", \"env\": {\"A=B\": {\"value\": \"x\"}}}"),
          "modules.m.env: invalid variable name 'A=B'" },
        { "duplicate module", "{\"schemaVersion\": \"1.0\", " SYSTEM ", \"modules\": {\"m\": {}, \"m\": {}}}", NULL },
        { "module named edgeHub", "{\"schemaVersion\": \"1.0\", " SYSTEM ", \"modules\": {\"edgeHub\": {}}}",
          "modules.edgeHub: duplicate module name (a system module)" },
        { "bad module name", "{\"schemaVersion\": \"1.0\", " SYSTEM ", \"modules\": {\"a/b\": {}}}",
          "modules: invalid module name 'a/b' (1..64 of A-Z a-z 0-9 _ -, not starting with -)" },
        { "dot in module name", "{\"schemaVersion\": \"1.0\", " SYSTEM ", \"modules\": {\"a.b\": {}}}",
          "modules: invalid module name 'a.b' (1..64 of A-Z a-z 0-9 _ -, not starting with -)" },
        { "amqp upstream",
          "{\"schemaVersion\": \"1.0\", \"runtime\": {\"type\": \"process\"}, \"systemModules\": {\"edgeAgent\": {\"type\": \"process\"},"
          " \"edgeHub\": {\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\","
          " \"env\": {\"UpstreamProtocol\": {\"value\": \"AmqpWs\"}}}}}",
          "systemModules.edgeHub.env.UpstreamProtocol: 'AmqpWs' is not supported; this hub talks to IoT Hub over MQTT only (Mqtt)" },
        { "edgeHub stopped",
          "{\"schemaVersion\": \"1.0\", \"runtime\": {\"type\": \"process\"}, \"systemModules\": {\"edgeAgent\": {\"type\": \"process\"},"
          " \"edgeHub\": {\"type\": \"process\", \"status\": \"stopped\", \"restartPolicy\": \"always\"}}}",
          "systemModules.edgeHub.status: the hub cannot be stopped by its own deployment (must be running)" },
        { "unknown system module",
          "{\"schemaVersion\": \"1.0\", \"runtime\": {\"type\": \"process\"}, \"systemModules\": {\"edgeX\": {}}}",
          "systemModules: unknown module 'edgeX' (edgeAgent, edgeHub)" },
        { "unknown runtime", "{\"schemaVersion\": \"1.0\", \"runtime\": {\"type\": \"vm\"}}",
          "runtime.type: unknown runtime 'vm' (process)" },
};

static void test_bad(void **state) {
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                Manifest *m = NULL;
                char *error = NULL;
                int r = parse(bad[i].json, &m, &error);
                if (r != -EBADMSG || !error || (bad[i].error && strcmp(error, bad[i].error) != 0))
                        fail_msg("%s: got %d '%s', expected '%s'", bad[i].what, r, error ? error : "(null)",
                                 bad[i].error ? bad[i].error : "(any)");
                assert_null(m);
                assert_null(strchr(error, '\n'));
                free(error);
        }
}

static void test_same_process(void **state) {
        _cleanup_(manifest_freep) Manifest *a = NULL, *b = NULL;
        char *error = NULL;
        (void) state;

        assert_int_equal(parse(MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\","
                                   " \"settings\": {\"path\": \"/x\", \"args\": [\"1\"]}, \"env\": {\"A\": {\"value\": \"1\"}, \"B\": {\"value\": \"2\"}}}"),
                               &a, &error),
                         0);
        /* Env order does not matter; status and policy are not the process. */
        assert_int_equal(parse(MOD("{\"type\": \"process\", \"status\": \"stopped\", \"restartPolicy\": \"never\","
                                   " \"settings\": {\"path\": \"/x\", \"args\": [\"1\"]}, \"env\": {\"B\": {\"value\": \"2\"}, \"A\": {\"value\": \"1\"}}}"),
                               &b, &error),
                         0);
        assert_true(manifest_module_same_process(&a->modules[0], &b->modules[0]));
        b = manifest_free(b);
        assert_int_equal(parse(MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\","
                                   " \"settings\": {\"path\": \"/x\", \"args\": [\"2\"]}, \"env\": {\"A\": {\"value\": \"1\"}, \"B\": {\"value\": \"2\"}}}"),
                               &b, &error),
                         0);
        assert_false(manifest_module_same_process(&a->modules[0], &b->modules[0]));
        b = manifest_free(b);
        assert_int_equal(parse(MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\","
                                   " \"settings\": {\"path\": \"/x\", \"args\": [\"1\"]}, \"env\": {\"A\": {\"value\": \"1\"}, \"B\": {\"value\": \"3\"}}}"),
                               &b, &error),
                         0);
        assert_false(manifest_module_same_process(&a->modules[0], &b->modules[0]));
}

static void test_executables(void **state) {
        _cleanup_(manifest_freep) Manifest *m = NULL;
        char *error = NULL;
        (void) state;

        assert_int_equal(parse(MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\","
                                   " \"settings\": {\"path\": \"/bin/sh\"}}"),
                               &m, &error),
                         0);
        assert_int_equal(manifest_check_executables(m, &error), 0);
        m = manifest_free(m);

        assert_int_equal(parse(MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\","
                                   " \"settings\": {\"path\": \"/nonexistent/edgehub-module\"}}"),
                               &m, &error),
                         0);
        assert_int_equal(manifest_check_executables(m, &error), -ENOENT);
        assert_string_equal(error, "module 'm': executable '/nonexistent/edgehub-module': No such file or directory");
        free(error);
        m = manifest_free(m);

        assert_int_equal(parse(MOD("{\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\","
                                   " \"settings\": {\"path\": \"/tmp\"}}"),
                               &m, &error),
                         0);
        assert_int_equal(manifest_check_executables(m, &error), -EISDIR);
        assert_string_equal(error, "module 'm': executable '/tmp': not a regular file");
        free(error);
}

static void test_enums(void **state) {
        (void) state;
        for (int i = 0; i < _RESTART_POLICY_MAX; i++)
                assert_int_equal(restart_policy_from_string(restart_policy_to_string(i)), i);
        for (int i = 0; i < _MODULE_STATUS_MAX; i++)
                assert_int_equal(module_status_from_string(module_status_to_string(i)), i);
        assert_int_equal(restart_policy_from_string("Always"), _RESTART_POLICY_INVALID);
        assert_null(restart_policy_to_string(_RESTART_POLICY_MAX));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_schema_1_0),   cmocka_unit_test(test_schema_1_1),
                cmocka_unit_test(test_bad),          cmocka_unit_test(test_same_process),
                cmocka_unit_test(test_executables),  cmocka_unit_test(test_enums),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
