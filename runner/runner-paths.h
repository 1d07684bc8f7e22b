/* Where edgehub-run finds the programs it starts */
#pragma once

#include <stdbool.h>

#include "proto/runtime/config.h"

/*
 * The daemons and the plugin are looked up in runner.libexec_dir, by default
 * the folder of edgehub-run's own executable (/proc/self/exe). So that a
 * meson build tree runs as it is, each is also looked up where meson puts it
 * relative to that folder:
 *   {dir}/edgehub-auth-cache  else {dir}/../auth-cache/edgehub-auth-cache
 *   {dir}/edgehub-hub-store   else {dir}/../hub-store/edgehub-hub-store
 *   {dir}/edgehub-method-router else {dir}/../method-router/edgehub-method-router
 *   {dir}/edgehub-twin-sync   else {dir}/../twin-sync/edgehub-twin-sync
 *   {dir}/edgehub-plugin.so   else {dir}/../broker-plugin/edgehub-plugin.so
 * and last where "meson install" puts them (EDGEHUB_LIBEXECDIR, EDGEHUB_PLUGINDIR).
 * runner.plugin, when set, names the plugin exactly; the broker's TLS shim
 * (edgehub-tls-shim.so) is taken from the plugin's folder. All results are
 * absolute, in canonical folders (the file name itself may be a symlink).
 */
typedef struct RunnerPaths {
        char *auth_cache;
        char *hub_store;
        char *method_router;
        char *twin_sync;
        char *agent;
        char *plugin;    /* NULL unless want_plugin */
        char *mosquitto; /* NULL unless want_plugin */
        char *tls_shim;  /* edgehub-tls-shim.so beside the plugin; NULL if absent (X.509 devices then fail) */
} RunnerPaths;

#define RUNNER_PATHS_NULL ((RunnerPaths){})

/* The folder holding the running executable. */
int self_exe_dir(char **ret);

/*
 * exe_dir: the fallback for runner.libexec_dir. want_daemons/want_plugin:
 * which to look up. -ENOENT when one is missing; *ret_error names where it
 * was looked for.
 */
int runner_paths_resolve(const Config *c, const char *exe_dir, bool want_daemons, bool want_plugin,
                         RunnerPaths *ret, char **ret_error);
void runner_paths_deinit(RunnerPaths *p);
