/* Fuzz target: the deployment manifest ($edgeAgent desired properties) */
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/manifest.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(manifest_freep) Manifest *m = NULL;
        _cleanup_free_ char *error = NULL;

        log_set_max_level(LOG_CRIT);
        if (size > MANIFEST_MAX + 1)
                return 0;

        int r = manifest_parse(data, size, &m, &error);
        /* Not assert(): the invariants must hold in -DNDEBUG builds too. */
        if (r < 0) {
                if (m || (r != -ENOMEM && (!error || strchr(error, '\n'))))
                        abort();
                return 0;
        }
        if (error || !m || !m->schema_version || m->n_modules > MANIFEST_MODULES_MAX)
                abort();
        for (size_t i = 0; i < m->n_modules; i++) {
                const ManifestModule *mm = &m->modules[i];
                if (!mm->name || !mm->path || mm->path[0] != '/' || mm->n_args > MANIFEST_ARGS_MAX ||
                    mm->n_env > MANIFEST_ENV_MAX || !module_status_to_string(mm->status) ||
                    !restart_policy_to_string(mm->restart_policy) || manifest_find(m, mm->name) != mm ||
                    !manifest_module_same_process(mm, mm))
                        abort();
                if (i > 0 && m->modules[i - 1].startup_order > mm->startup_order)
                        abort();
                for (size_t j = 0; j < mm->n_args; j++)
                        if (!mm->args[j])
                                abort();
                for (size_t j = 0; j < mm->n_env; j++)
                        if (!mm->env[j].name || !mm->env[j].value || strchr(mm->env[j].name, '='))
                                abort();
        }
        return 0;
}
