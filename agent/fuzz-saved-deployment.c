/* Fuzz target: the agent's saved deployment file and the outcomes in it, as read back at start */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/saved-deployment.h"
#include "proto/iothub/manifest.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_outcome(json_t *o) {
        SavedOutcome out;

        if (saved_outcome_parse(o, &out) < 0)
                return;
        if (out.code < 100 || out.code > 599 || !out.description)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(saved_deployment_deinit) SavedDeployment d = SAVED_DEPLOYMENT_NULL;
        _cleanup_free_ char *error = NULL, *text = NULL, *manifest_error = NULL;
        _cleanup_(manifest_freep) Manifest *manifest = NULL;

        log_set_max_level(LOG_CRIT);
        if (size > 2u * MANIFEST_MAX)
                return 0;
        int r = saved_deployment_parse(data, size, &d, &error);
        if (r < 0) {
                /* Not assert(): the invariants must hold in -DNDEBUG builds too. */
                if (r != -EBADMSG || d.doc)
                        abort();
                return 0;
        }
        if (!d.doc || (d.manifest && json_is_null(d.manifest)))
                abort();
        check_outcome(d.last);
        check_outcome(d.twin);
        /* What start-up does with the manifest: dump it and parse it as a deployment. */
        if (d.manifest) {
                text = json_dumps(d.manifest, JSON_COMPACT);
                if (text)
                        (void) manifest_parse(text, strlen(text), &manifest, &manifest_error);
        }
        return 0;
}
