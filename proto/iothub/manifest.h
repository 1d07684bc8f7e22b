/* The deployment manifest: the $edgeAgent module twin's desired properties */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/util/cleanup.h"

/*
 * {"schemaVersion": "1.0" | "1.1",
 *  "runtime": {"type": "process" | "docker", "settings": {...}},     settings ignored
 *  "systemModules": {
 *     "edgeAgent": {"type": T, "settings": {...}, "env": ENV},         describes us: only shape checked
 *     "edgeHub": {"type": T, "status": S, "restartPolicy": P, "settings": {...}, "env": ENV}},
 *  "modules": {                                                       optional; may be empty
 *     "name": {"type": "process", "status": "running" | "stopped",
 *              "restartPolicy": "never" | "on-failure" | "on-unhealthy" | "always",
 *              "settings": {"path": "/abs/exe", "args": ["..."]},
 *              "env": {"NAME": {"value": "..."}},
 *              "version": "...", "startupOrder": N (1.1 only)}},
 *  "$version": N, ...}                                                 other keys ignored
 *
 * Modules run as processes: "docker" modules are refused, naming the
 * module, since this runtime has no container engine. edgeHub's env
 * UpstreamProtocol must be Mqtt (this hub has no AMQP or WebSocket link).
 * Whether an executable exists is checked when the manifest is applied
 * (manifest_check_executables), not here: parsing depends on bytes only.
 * Parsed once, here (fuzz-manifest.c); the error is one line fit for
 * lastDesiredStatus.description.
 */
#define MANIFEST_MAX (256u * 1024u) /* bytes; IoT Hub caps desired properties at 32 KiB, local files get room */
#define MANIFEST_MODULES_MAX 64u
#define MANIFEST_ARGS_MAX 256u
#define MANIFEST_ENV_MAX 256u
#define MANIFEST_NAME_MAX 64u

typedef enum ModuleStatus {
        MODULE_STATUS_RUNNING,
        MODULE_STATUS_STOPPED,
        _MODULE_STATUS_MAX,
        _MODULE_STATUS_INVALID = -22,
} ModuleStatus;

/* In the order IoT Edge compares them: each policy restarts in the cases of those before it, and more. */
typedef enum RestartPolicy {
        RESTART_NEVER,
        RESTART_ON_FAILURE,
        RESTART_ON_UNHEALTHY,
        RESTART_ALWAYS,
        _RESTART_POLICY_MAX,
        _RESTART_POLICY_INVALID = -22,
} RestartPolicy;

typedef struct ManifestEnv {
        char *name;
        char *value;
} ManifestEnv;

typedef struct ManifestModule {
        char *name;
        char *version;          /* NULL if not given */
        ModuleStatus status;
        RestartPolicy restart_policy;
        unsigned startup_order; /* lower starts first; default UINT32_MAX as in IoT Edge */
        char *path;             /* absolute */
        char **args;            /* n_args strings (without argv[0]) */
        size_t n_args;
        ManifestEnv *env;
        size_t n_env;
        /*
         * settings.connectionString: true hands the module EdgeHubConnectionString
         * with its long-term key (weaker: anything that reads the module's memory
         * or environment has the key until it is rotated). Default false: the
         * module signs its tokens through the workload API and never holds a key.
         */
        bool connection_string;
} ManifestModule;

typedef struct Manifest {
        char *schema_version;
        int64_t version;          /* "$version"; -1 = not given (a local file) */
        char *upstream_protocol;  /* edgeHub env UpstreamProtocol; NULL if not given */
        char *storage_folder;     /* edgeHub env storageFolder; NULL if not given */
        ManifestModule *modules;  /* sorted by startupOrder, then as listed */
        size_t n_modules;
} Manifest;

/*
 * Parses buf[0..len). -EBADMSG with one line in *ret_error when it is not
 * JSON, a required key is missing, a type or value is wrong, a module is
 * of an unknown or docker type, or names collide; -ENOMEM.
 */
int manifest_parse(const void *buf, size_t len, Manifest **ret, char **ret_error);
Manifest *manifest_free(Manifest *m);

const ManifestModule *manifest_find(const Manifest *m, const char *name);
/* Same process, arguments and environment (status and restart policy may differ). */
bool manifest_module_same_process(const ManifestModule *a, const ManifestModule *b);
/* Every module's path is an executable file (access X_OK). -ENOENT etc. with *ret_error naming it. */
int manifest_check_executables(const Manifest *m, char **ret_error);

const char *module_status_to_string(ModuleStatus s);
ModuleStatus module_status_from_string(const char *s);
const char *restart_policy_to_string(RestartPolicy p);
RestartPolicy restart_policy_from_string(const char *s);

DEFINE_CLEANUP_FUNC(Manifest, manifest_free);
