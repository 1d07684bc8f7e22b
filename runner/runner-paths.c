/* Where edgehub-run finds the programs it starts */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/util/cleanup.h"
#include "runner/runner-paths.h"

int self_exe_dir(char **ret) {
        _cleanup_free_ char *exe = realpath("/proc/self/exe", NULL);
        char *dir;

        if (!exe)
                return -errno;
        dir = strdup(dirname(exe));
        if (!dir)
                return -ENOMEM;
        *ret = dir;
        return 0;
}

/*
 * path made absolute with its folder canonical, the last component kept:
 * a program may look at its own name (argv[0]) and be a symlink.
 */
static int absolute_path(const char *path, char **ret) {
        _cleanup_free_ char *copy = strdup(path), *base_copy = strdup(path), *dir = NULL;

        if (!copy || !base_copy)
                return -ENOMEM;
        dir = realpath(dirname(copy), NULL);
        if (!dir)
                return -errno;
        if (asprintf(ret, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, basename(base_copy)) < 0)
                return -ENOMEM;
        return 0;
}

/*
 * The first of {dir}/{name}, {dir}/../{subdir}/{name}, {system_dir}/{name} that passes
 * access(mode), canonical. system_dir is where "meson install" put it: an installed
 * /usr/bin/edgehub-run finds /usr/libexec/edgehub/ with no runner.* keys in the config.
 */
static int find_program(const char *dir, const char *subdir, const char *system_dir, const char *name, int mode,
                        char **ret, char **ret_error) {
        _cleanup_free_ char *installed = NULL, *built = NULL, *system = NULL;

        if (asprintf(&installed, "%s/%s", dir, name) < 0 || asprintf(&built, "%s/../%s/%s", dir, subdir, name) < 0 ||
            asprintf(&system, "%s/%s", system_dir, name) < 0)
                return -ENOMEM;

        const char *const candidates[] = { installed, built, system };
        for (size_t i = 0; i < ELEMENTSOF(candidates); i++) {
                if (access(candidates[i], mode) < 0)
                        continue;
                return absolute_path(candidates[i], ret);
        }

        if (asprintf(ret_error, "%s not found (looked for %s, %s and %s)", name, installed, built, system) < 0)
                *ret_error = NULL;
        return -ENOENT;
}

static int find_exact(const char *what, const char *path, int mode, char **ret, char **ret_error) {
        if (access(path, mode) < 0) {
                int r = -errno;
                if (asprintf(ret_error, "%s '%s': %s", what, path, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        return absolute_path(path, ret);
}

/* {folder of file}/{name} if readable, else NULL: optional companions of the plugin. */
static int find_beside(const char *file, const char *name, char **ret) {
        _cleanup_free_ char *copy = strdup(file), *path = NULL;

        if (!copy)
                return -ENOMEM;
        if (asprintf(&path, "%s/%s", dirname(copy), name) < 0)
                return -ENOMEM;
        if (access(path, R_OK) < 0) {
                *ret = NULL;
                return 0;
        }
        *ret = TAKE_PTR(path);
        return 0;
}

int runner_paths_resolve(const Config *c, const char *exe_dir, bool want_daemons, bool want_plugin,
                         RunnerPaths *ret, char **ret_error) {
        _cleanup_(runner_paths_deinit) RunnerPaths p = RUNNER_PATHS_NULL;
        const char *dir = c->libexec_dir ?: exe_dir;
        int r;

        *ret_error = NULL;
        if (want_daemons) {
                r = find_program(dir, "auth-cache", EDGEHUB_LIBEXECDIR, "edgehub-auth-cache", X_OK, &p.auth_cache, ret_error);
                if (r < 0)
                        return r;
                r = find_program(dir, "hub-store", EDGEHUB_LIBEXECDIR, "edgehub-hub-store", X_OK, &p.hub_store, ret_error);
                if (r < 0)
                        return r;
                r = find_program(dir, "method-router", EDGEHUB_LIBEXECDIR, "edgehub-method-router", X_OK,
                                 &p.method_router, ret_error);
                if (r < 0)
                        return r;
                r = find_program(dir, "twin-sync", EDGEHUB_LIBEXECDIR, "edgehub-twin-sync", X_OK, &p.twin_sync,
                                 ret_error);
                if (r < 0)
                        return r;
                r = find_program(dir, "agent", EDGEHUB_LIBEXECDIR, "edgehub-agent", X_OK, &p.agent, ret_error);
                if (r < 0)
                        return r;
        }
        if (want_plugin) {
                if (c->plugin_path)
                        r = find_exact("runner.plugin", c->plugin_path, R_OK, &p.plugin, ret_error);
                else
                        r = find_program(dir, "broker-plugin", EDGEHUB_PLUGINDIR, "edgehub-plugin.so", R_OK, &p.plugin, ret_error);
                if (r < 0)
                        return r;
                r = find_beside(p.plugin, "edgehub-tls-shim.so", &p.tls_shim);
                if (r < 0)
                        return r;
                r = find_exact("runner.mosquitto", c->mosquitto_path ?: "/usr/sbin/mosquitto", X_OK, &p.mosquitto,
                               ret_error);
                if (r < 0)
                        return r;
        }

        *ret = p;
        p = RUNNER_PATHS_NULL;
        return 0;
}

void runner_paths_deinit(RunnerPaths *p) {
        free(p->auth_cache);
        free(p->hub_store);
        free(p->method_router);
        free(p->twin_sync);
        free(p->agent);
        free(p->plugin);
        free(p->mosquitto);
        free(p->tls_shim);
        *p = RUNNER_PATHS_NULL;
}
