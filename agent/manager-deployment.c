/* Deployments: a manifest from the $edgeAgent twin or a local file, checked whole, applied, persisted */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/manager.h"
#include "agent/saved-deployment.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

static uint64_t realtime_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

void manager_record_outcome(Manager *m, DeploymentSource source, int64_t version, int code, const char *description) {
        m->last_source = source;
        m->last_version = version;
        m->last_code = code;
        (void) free_and_strdup(&m->last_description, description ? description : "");
        if (source == SOURCE_TWIN) {
                m->twin_version = version;
                m->twin_code = code;
                (void) free_and_strdup(&m->twin_description, description ? description : "");
        }
        (void) manager_save_deployment(m);
        manager_report_soon(m);
}

/* Takes a saved outcome back; a malformed one is dropped (it only ever explains, never decides). */
void manager_restore_outcome(Manager *m, json_t *o, bool twin) {
        SavedOutcome out;

        if (saved_outcome_parse(o, &out) < 0)
                return;
        if (twin) {
                m->twin_code = out.code;
                (void) free_and_strdup(&m->twin_description, out.description);
        } else {
                m->last_code = out.code;
                m->last_version = out.version;
                m->last_source = deployment_source_from_string(out.source);
                (void) free_and_strdup(&m->last_description, out.description);
        }
}

/* A refusal's code as edgeAgent reports it: 412 for a schema version it does not know, 400 otherwise. */
static int refusal_code(int r, const char *error) {
        if (r == -ENOMEM)
                return DESIRED_FAILED;
        if (error && strncmp(error, "unsupported schemaVersion", 25) == 0)
                return DESIRED_BAD_SCHEMA;
        return DESIRED_INVALID;
}

int manager_deploy(Manager *m, const void *text, size_t len, DeploymentSource source, int64_t version,
                   char **ret_error) {
        _cleanup_(manifest_freep) Manifest *manifest = NULL;
        _cleanup_free_ char *error = NULL;
        json_auto_t *json = NULL;
        json_error_t e;
        int r;

        r = manifest_parse(text, len, &manifest, &error);
        if (r >= 0)
                r = manifest_check_executables(manifest, &error);
        if (r >= 0) {
                json = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
                if (!json)
                        r = -ENOMEM; /* it parsed a moment ago */
        }
        /* Last, as it has an effect: hub-store moves its store once it accepts. */
        if (r >= 0) {
                r = manager_storage_folder(m, manifest, &error);
                if (r < 0 && m->loading) {
                        /* The saved deployment's modules run regardless; the store stays where it is. */
                        log_warning("The saved deployment's storage folder is refused: %s", error ? error : "n/a");
                        free(error);
                        error = NULL;
                        r = 0;
                }
        }
        if (version < 0 && manifest)
                version = manifest->version;
        if (r < 0) {
                log_warning("Refusing the deployment from the %s (version %" PRIi64 "), the running one stays: %s",
                            source == SOURCE_TWIN ? "$edgeAgent twin" : "file", version,
                            error ? error : "out of memory");
                manager_record_outcome(m, source, version, refusal_code(r, error), error ? error : "out of memory");
                if (ret_error)
                        *ret_error = TAKE_PTR(error);
                return r;
        }
        /* The twin's bookkeeping is not part of what we run. */
        (void) json_object_del(json, "$metadata");

        /* Swap, then reconcile while the old manifest is still alive (modules compare against it). */
        Manifest *old = m->manifest;
        m->manifest = TAKE_PTR(manifest);
        json_decref(m->manifest_json);
        m->manifest_json = TAKE_PTR(json);
        m->source = source;
        m->applied_at = realtime_usec();
        if (source == SOURCE_TWIN)
                m->twin_version = version;
        manager_reconcile(m);
        manifest_free(old);

        log_notice("Applied the deployment from the %s (version %" PRIi64 "): %zu modules",
                   source == SOURCE_TWIN ? "$edgeAgent twin" : "file", version, m->manifest->n_modules);
        manager_record_outcome(m, source, version, DESIRED_OK, "");
        return 0;
}

static bool desired_is_empty(json_t *desired) {
        const char *key;
        json_t *v;
        json_object_foreach(desired, key, v)
                if (key[0] != '$')
                        return false;
        return true;
}

void manager_twin_desired(Manager *m, json_t *desired) {
        _cleanup_free_ char *text = NULL, *error = NULL;
        json_t *v = json_object_get(desired, "$version");
        int64_t version = json_is_integer(v) ? json_integer_value(v) : -1;

        if (version >= 0 && version == m->twin_version)
                return; /* handled already (applied or refused): nothing new */
        if (desired_is_empty(desired)) {
                /* A new edge device's twin: no deployment set yet. Keep what runs. */
                log_debug("The $edgeAgent twin holds no deployment (version %" PRIi64 ")", version);
                return;
        }
        text = json_dumps(desired, JSON_COMPACT);
        if (!text) {
                log_error("Out of memory reading the $edgeAgent twin, trying again at the next poll");
                return;
        }
        (void) manager_deploy(m, text, strlen(text), SOURCE_TWIN, version, &error);
}
