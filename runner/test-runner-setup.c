/* edgehub-run's program lookup (installed and meson layouts) and its file helpers */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/runtime/state-file.h"
#include "proto/util/cleanup.h"
#include "runner/runner-paths.h"
#include "runner/runner-setup.h"

static char root[] = "/tmp/test-runner-setup-XXXXXX";

static char *at(const char *rel) {
        char *p;
        assert_true(asprintf(&p, "%s/%s", root, rel) > 0);
        return p;
}

static void touch(const char *rel, mode_t mode) {
        _cleanup_free_ char *p = at(rel);
        _cleanup_free_ char *dir = strdup(p);

        *strrchr(dir, '/') = '\0';
        assert_int_equal(mkdir_parents(dir, 0755), 0);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(chmod(p, mode), 0);
}

static int setup(void **state) {
        assert_non_null(mkdtemp(root));
        return 0;
}

static int teardown(void **state) {
        _cleanup_free_ char *cmd = NULL;
        assert_true(asprintf(&cmd, "rm -rf '%s'", root) > 0);
        return system(cmd) == 0 ? 0 : -1;
}

static void test_meson_layout(void **state) {
        _cleanup_free_ char *exe_dir = at("build/runner"), *error = NULL, *auth = at("build/auth-cache/edgehub-auth-cache"),
                            *store = at("build/hub-store/edgehub-hub-store"),
                            *router = at("build/method-router/edgehub-method-router"),
                            *plugin = at("build/broker-plugin/edgehub-plugin.so"), *mosq = at("bin/mosquitto"),
                            *shim = at("build/broker-plugin/edgehub-tls-shim.so");
        RunnerPaths p = RUNNER_PATHS_NULL;
        Config c = { .mosquitto_path = mosq };

        touch("build/runner/edgehub-run", 0755);
        touch("build/auth-cache/edgehub-auth-cache", 0755);
        touch("build/hub-store/edgehub-hub-store", 0755);
        touch("build/method-router/edgehub-method-router", 0755);
        touch("build/twin-sync/edgehub-twin-sync", 0755);
        touch("build/agent/edgehub-agent", 0755);
        touch("build/broker-plugin/edgehub-plugin.so", 0644);
        touch("bin/mosquitto", 0755);

        assert_int_equal(runner_paths_resolve(&c, exe_dir, true, true, &p, &error), 0);
        assert_string_equal(p.auth_cache, auth);
        assert_string_equal(p.hub_store, store);
        assert_string_equal(p.method_router, router);
        assert_string_equal(p.plugin, plugin);
        assert_string_equal(p.mosquitto, mosq);
        /* The TLS shim is optional (X.509 devices need it): absent, not an error. */
        assert_null(p.tls_shim);
        runner_paths_deinit(&p);

        touch("build/broker-plugin/edgehub-tls-shim.so", 0644);
        assert_int_equal(runner_paths_resolve(&c, exe_dir, true, true, &p, &error), 0);
        assert_string_equal(p.tls_shim, shim);
        runner_paths_deinit(&p);

        /* Without the broker, the plugin is not needed. */
        assert_int_equal(runner_paths_resolve(&c, exe_dir, true, false, &p, &error), 0);
        assert_null(p.plugin);
        assert_null(p.mosquitto);
        runner_paths_deinit(&p);
}

static void test_installed_layout(void **state) {
        _cleanup_free_ char *libexec = at("usr/libexec/edgehub"), *bin = at("usr/bin"), *error = NULL,
                            *auth = at("usr/libexec/edgehub/edgehub-auth-cache"),
                            *plugin = at("usr/libexec/edgehub/edgehub-plugin.so"), *mosq = at("bin/mosquitto"),
                            *other_plugin = at("elsewhere/p.so");
        RunnerPaths p = RUNNER_PATHS_NULL;
        Config c = { .mosquitto_path = mosq, .libexec_dir = libexec };

        touch("bin/mosquitto", 0755);
        touch("usr/bin/edgehub-run", 0755);
        touch("usr/libexec/edgehub/edgehub-auth-cache", 0755);
        touch("usr/libexec/edgehub/edgehub-hub-store", 0755);
        touch("usr/libexec/edgehub/edgehub-method-router", 0755);
        touch("usr/libexec/edgehub/edgehub-twin-sync", 0755);
        touch("usr/libexec/edgehub/edgehub-agent", 0755);
        touch("usr/libexec/edgehub/edgehub-plugin.so", 0644);
        touch("elsewhere/p.so", 0644);

        /* runner.libexec_dir wins over the executable's folder. */
        assert_int_equal(runner_paths_resolve(&c, bin, true, true, &p, &error), 0);
        assert_string_equal(p.auth_cache, auth);
        assert_string_equal(p.plugin, plugin);
        runner_paths_deinit(&p);

        c.plugin_path = other_plugin;
        assert_int_equal(runner_paths_resolve(&c, bin, true, true, &p, &error), 0);
        assert_string_equal(p.plugin, other_plugin);
        runner_paths_deinit(&p);
}

static void test_missing(void **state) {
        _cleanup_free_ char *dir = at("empty/bin"), *error = NULL, *expected = NULL;
        RunnerPaths p = RUNNER_PATHS_NULL;
        Config c = {};

        assert_int_equal(mkdir_parents(dir, 0755), 0);
        assert_int_equal(runner_paths_resolve(&c, dir, true, false, &p, &error), -ENOENT);
        assert_true(asprintf(&expected, "edgehub-auth-cache not found (looked for %s/edgehub-auth-cache, "
                                        "%s/../auth-cache/edgehub-auth-cache and "
                                        EDGEHUB_LIBEXECDIR "/edgehub-auth-cache)", dir, dir) > 0);
        assert_string_equal(error, expected);
        assert_null(p.auth_cache);
}

static void test_files(void **state) {
        _cleanup_free_ char *dir = at("a/b/c"), *f = at("a/b/c/file"), *g = at("a/b/c/copy"), *buf = calloc(1, 64);
        struct stat st;
        int fd;

        assert_int_equal(mkdir_parents(dir, 0755), 0);
        assert_int_equal(mkdir_parents(dir, 0755), 0);
        assert_int_equal(stat(dir, &st), 0);
        assert_true(S_ISDIR(st.st_mode));

        assert_int_equal(write_file_atomic(f, "hello\n", 6, 0600, (uid_t) -1, (gid_t) -1), 0);
        assert_int_equal(stat(f, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_size, 6);

        assert_int_equal(copy_file_atomic(f, g, 0644, (uid_t) -1, (gid_t) -1), 0);
        fd = open(g, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, buf, 63), 6);
        close(fd);
        assert_string_equal(buf, "hello\n");
        assert_int_equal(copy_file_atomic("/nonexistent/x", g, 0644, (uid_t) -1, (gid_t) -1), -ENOENT);

        /* Readability as another user, from the mode bits of the file and its folders (mkdtemp made root 0700). */
        assert_int_equal(chmod(root, 0755), 0);
        assert_int_equal(chmod(f, 0640), 0);
        assert_false(file_readable_by(f, 4242, 4242));
        assert_int_equal(chmod(f, 0644), 0);
        assert_true(file_readable_by(f, 4242, 4242));
        assert_int_equal(chmod(dir, 0700), 0);
        assert_false(file_readable_by(f, 4242, 4242));
        assert_int_equal(chmod(dir, 0755), 0);
}

static void test_ingest_dir(void **state) {
        _cleanup_free_ char *storage = at("var/lib/edgehub"), *ingest = at("var/lib/edgehub/ingest");
        Config c = { .storage_dir = storage, .runtime_dir = storage };
        BrokerUser u = BROKER_USER_NULL;
        struct stat st;

        assert_int_equal(mkdir_parents(storage, 0750), 0);
        assert_int_equal(stat(ingest, &st), -1);
        assert_int_equal(runner_ingest_dir_setup(&c, &u), 0);
        assert_int_equal(stat(ingest, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0700);
        /* Again: already there is fine. */
        assert_int_equal(runner_ingest_dir_setup(&c, &u), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_meson_layout),
                cmocka_unit_test(test_installed_layout),
                cmocka_unit_test(test_missing),
                cmocka_unit_test(test_files),
                cmocka_unit_test(test_ingest_dir),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
