/* Unit tests: restart policy, back-off, a module's environment, atomic state files */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/module-env.h"
#include "agent/module-user.h"
#include "agent/module.h"
#include "proto/runtime/state-file.h"
#include "proto/util/cleanup.h"

static void test_policy(void **state) {
        (void) state;
        static const struct {
                RestartPolicy policy;
                int code;
                bool signaled;
                bool restart;
        } cases[] = {
                { RESTART_NEVER, 0, false, false },       { RESTART_NEVER, 3, false, false },
                { RESTART_NEVER, 137, true, false },      { RESTART_ON_FAILURE, 0, false, false },
                { RESTART_ON_FAILURE, 3, false, true },   { RESTART_ON_FAILURE, 143, true, true },
                { RESTART_ON_UNHEALTHY, 0, false, false }, { RESTART_ON_UNHEALTHY, 1, false, true },
                { RESTART_ALWAYS, 0, false, true },       { RESTART_ALWAYS, 3, false, true },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_int_equal(module_policy_restarts(cases[i].policy, cases[i].code, cases[i].signaled),
                                 cases[i].restart);
}

static void test_backoff(void **state) {
        (void) state;
        uint64_t d = 0, sum = 0;
        unsigned forks = 0;

        /* 1 s, doubling, capped at 5 min. */
        d = module_backoff_next(d, 0);
        assert_int_equal(d, MODULE_BACKOFF_MIN_USEC);
        assert_int_equal(module_backoff_next(d, 0), 2 * MODULE_BACKOFF_MIN_USEC);
        for (int i = 0; i < 20; i++)
                d = module_backoff_next(d, 0);
        assert_int_equal(d, MODULE_BACKOFF_MAX_USEC);
        /* Healthy for 10 minutes: from the start again. */
        assert_int_equal(module_backoff_next(MODULE_BACKOFF_MAX_USEC, MODULE_HEALTHY_USEC), MODULE_BACKOFF_MIN_USEC);
        assert_int_equal(module_backoff_next(8 * MODULE_BACKOFF_MIN_USEC, MODULE_HEALTHY_USEC - 1),
                         16 * MODULE_BACKOFF_MIN_USEC);

        /* A module that crashes at once forks at most ~20 times in an hour, not thousands. */
        for (d = 0; sum < 3600ull * 1000000u; forks++) {
                d = module_backoff_next(d, 0);
                sum += d;
        }
        assert_true(forks < 25);
}

static void test_format_time(void **state) {
        char buf[32];
        (void) state;

        module_format_time(0, buf);
        assert_string_equal(buf, "0001-01-01T00:00:00Z");
        module_format_time(1700000000123456ull, buf);
        assert_string_equal(buf, "2023-11-14T22:13:20.123Z");
        assert_string_equal(runtime_status_to_string(RUNTIME_BACKOFF), "backoff");
}

static const char *find(char **l, const char *name) {
        size_t n = strlen(name);
        for (; *l; l++)
                if (strncmp(*l, name, n) == 0 && (*l)[n] == '=')
                        return *l + n + 1;
        return NULL;
}

static void test_env(void **state) {
        ManifestEnv env[] = { { (char *) "LOG", (char *) "debug" }, { (char *) "IOTEDGE_MODULEID", (char *) "evil" } };
        ManifestModule spec = { .name = (char *) "sample", .path = (char *) "/bin/true", .env = env, .n_env = 2 };
        ModuleEnvInput in = {
                .hub_hostname = "hub.azure-devices.net", .gateway_hostname = "localhost", .gateway_port = 8884,
                .device_id = "edge-1", .key = "a2V5", .ca_file = "/etc/edgehub/ca.crt", .path = "/usr/bin:/bin",
                .spec = &spec,
        };
        _cleanup_(strv_freep) char **l = NULL;
        (void) state;

        assert_int_equal(module_env_build(&in, &l), 0);
        assert_string_equal(find(l, "EdgeHubConnectionString"),
                            "HostName=hub.azure-devices.net;GatewayHostName=localhost:8884;DeviceId=edge-1;"
                            "ModuleId=sample;SharedAccessKey=a2V5");
        assert_string_equal(find(l, "EdgeModuleCACertificateFile"), "/etc/edgehub/ca.crt");
        assert_string_equal(find(l, "IOTEDGE_DEVICEID"), "edge-1");
        assert_string_equal(find(l, "IOTEDGE_MODULEID"), "sample"); /* ours win over the manifest's */
        assert_string_equal(find(l, "IOTEDGE_IOTHUBHOSTNAME"), "hub.azure-devices.net");
        assert_string_equal(find(l, "IOTEDGE_GATEWAYHOSTNAME"), "localhost");
        assert_string_equal(find(l, "PATH"), "/usr/bin:/bin");
        assert_string_equal(find(l, "LOG"), "debug");
        size_t n = 0;
        for (char **p = l; *p; p++)
                n++;
        assert_int_equal(n, 8);
        l = strv_free(l);

        /* The standard port is not spelled out; no key, no connection string; no CA, no variable. */
        in.gateway_port = 8883;
        in.key = NULL;
        in.ca_file = NULL;
        assert_int_equal(module_env_build(&in, &l), 0);
        assert_null(find(l, "EdgeHubConnectionString"));
        assert_null(find(l, "EdgeModuleCACertificateFile"));
        in.key = "a2V5";
        l = strv_free(l);
        assert_int_equal(module_env_build(&in, &l), 0);
        assert_non_null(strstr(find(l, "EdgeHubConnectionString"), "GatewayHostName=localhost;"));
}

static void test_state_file(void **state) {
        char dir[] = "/tmp/test-agent-XXXXXX";
        _cleanup_free_ char *text = NULL;
        size_t len;
        (void) state;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(state_file_read(dir, "x.json", 100, &text, &len), -ENOENT);
        assert_int_equal(state_file_write(dir, "x.json", "{\"a\":1}"), 0);
        assert_int_equal(state_file_write(dir, "x.json", "{\"a\":2}"), 0);
        assert_int_equal(state_file_read(dir, "x.json", 100, &text, &len), 0);
        assert_string_equal(text, "{\"a\":2}");
        assert_int_equal(len, 7);
        assert_int_equal(state_file_read(dir, "x.json", 3, &text, &len), -EFBIG);
        char path[64];
        snprintf(path, sizeof(path), "%s/x.json", dir);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

/* uids the test says are taken: a bitmap over 100000..100009. */
static bool taken_in(uid_t uid, void *userdata) {
        const unsigned *bits = userdata;
        return uid >= 100000 && uid <= 100009 && (*bits >> (uid - 100000)) & 1;
}

static void test_module_uid(void **state) {
        const UidRange range = { 100000, 100009 };
        uid_t a, b, again;
        unsigned bits = 0;

        /* FNV-1a, fixed: a module's folder belongs to the uid its name hashes to, across versions. */
        assert_int_equal(module_name_hash(""), 2166136261u);
        assert_int_equal(module_name_hash("a"), 0xe40c292cu);
        assert_int_equal(module_uid_pick("sensor", &range, taken_in, &bits, &a), 0);
        assert_int_equal(a, 100000 + module_name_hash("sensor") % 10);
        assert_int_equal(module_uid_pick("sensor", &range, taken_in, &bits, &again), 0);
        assert_int_equal(a, again);
        /* Taken: the next one, wrapping at the end of the range. */
        bits = 1u << (a - 100000);
        assert_int_equal(module_uid_pick("sensor", &range, taken_in, &bits, &b), 0);
        assert_int_equal(b, a == 100009 ? 100000 : a + 1);
        bits = 0x3ff & ~(1u << 3);
        assert_int_equal(module_uid_pick("sensor", &range, taken_in, &bits, &b), 0);
        assert_int_equal(b, 100003);
        bits = 0x3ff;
        assert_int_equal(module_uid_pick("sensor", &range, taken_in, &bits, &b), -EUSERS);
}

static void test_module_dir(void **state) {
        char dir[] = "/tmp/edgehub-test-moddir-XXXXXX";
        _cleanup_free_ char *path = NULL, *dot = NULL, *link = NULL;
        uid_t uid = geteuid() == 0 ? 620001 : geteuid();
        struct stat st;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(module_dir_prepare(dir, "filter", uid, &path), 0);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(st.st_uid, uid);
        /* Again: already there, already its own. */
        free(path);
        assert_int_equal(module_dir_prepare(dir, "filter", uid, &path), 0);
        /* ".." must stay inside. */
        assert_int_equal(module_dir_prepare(dir, "..", uid, &dot), 0);
        assert_non_null(strstr(dot, "/_.."));
        /* A symlink where the folder should be is refused, not followed. */
        assert_true(asprintf(&link, "%s/evil", dir) > 0);
        assert_int_equal(symlink("/etc", link), 0);
        char *evil = NULL;
        assert_int_equal(module_dir_prepare(dir, "evil", uid, &evil), -ENOTDIR);
        assert_int_equal(unlink(link), 0);
        assert_int_equal(rmdir(dot), 0);
        assert_int_equal(rmdir(path), 0);
        assert_int_equal(rmdir(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_module_uid), cmocka_unit_test(test_module_dir),
                cmocka_unit_test(test_policy), cmocka_unit_test(test_backoff),    cmocka_unit_test(test_format_time),
                cmocka_unit_test(test_env),    cmocka_unit_test(test_state_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
