/* The agent's saved deployment file (storage.dir/agent/deployment.json) as read back at start */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent/saved-deployment.h"

int saved_deployment_parse(const void *text, size_t len, SavedDeployment *ret, char **ret_error) {
        SavedDeployment d = SAVED_DEPLOYMENT_NULL;
        json_int_t twin_version = -1, applied_at = 0;
        json_error_t e;

        d.doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);
        if (!d.doc || json_unpack_ex(d.doc, &e, 0, "{s?o, s?s, s?I, s?I, s?o, s?o}", "manifest", &d.manifest,
                                     "source", &d.source, "twinVersion", &twin_version, "appliedAt", &applied_at,
                                     "last", &d.last, "twin", &d.twin) < 0) {
                json_decref(d.doc);
                *ret_error = strdup(e.text);
                return -EBADMSG;
        }
        if (d.manifest && json_is_null(d.manifest))
                d.manifest = NULL;
        /* Only an object can be a manifest; a scalar could not even be written back out to apply. */
        if (d.manifest && !json_is_object(d.manifest)) {
                json_decref(d.doc);
                *ret_error = strdup("manifest: not an object");
                return -EBADMSG;
        }
        d.twin_version = twin_version;
        d.applied_at = applied_at;
        *ret = d;
        return 0;
}

void saved_deployment_deinit(SavedDeployment *d) {
        json_decref(d->doc);
        *d = (SavedDeployment) SAVED_DEPLOYMENT_NULL;
}

int saved_outcome_parse(json_t *o, SavedOutcome *ret) {
        SavedOutcome out = { .version = -1 };
        json_int_t version = -1;

        if (!o || json_unpack(o, "{s:i, s:s, s:I, s?s}", "code", &out.code, "description", &out.description,
                              "version", &version, "source", &out.source) < 0 ||
            out.code < 100 || out.code > 599)
                return -EBADMSG;
        out.version = version;
        *ret = out;
        return 0;
}
