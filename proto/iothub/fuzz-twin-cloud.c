/* Fuzz target: twin properties as the cloud sends them (desired patches, full twins), and patch composition */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/twin-patch.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * The input is a cloud properties object ({..., "$version": n}) or a full
 * twin ({"desired": {...}, "reported": {...}}). What twin_cloud_properties()
 * accepts must behave under every operation twin-sync applies to it: merge
 * into a document, diff back, compose with itself as a pending patch.
 */
static void check_properties(const json_t *props) {
        json_auto_t *p = NULL, *doc = NULL, *empty = NULL, *diff = NULL, *first = NULL;
        int64_t version;

        if (!props || twin_cloud_properties(props, &p, &version) < 0)
                return;
        if (version < 0 || json_object_get(p, "$version"))
                abort();
        (void) twin_document_size(p);
        (void) twin_properties_check(p, true, NULL);

        /* merge(doc, diff(doc, to)) == to for a document without nulls. */
        doc = json_object();
        if (!doc || twin_merge(doc, p) < 0)
                return;
        empty = json_object();
        diff = empty ? twin_diff(empty, doc) : NULL;
        if (diff) {
                json_auto_t *back = json_object();
                if (back && twin_merge(back, diff) == 0 && !json_equal(back, doc))
                        abort();
        }
        /* Composing a patch with itself is the patch. */
        first = json_deep_copy(p);
        if (first && twin_patch_compose(first, p) == 0 && !json_equal(first, p))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_error_t e;

        log_set_max_level(LOG_CRIT);
        if (size > 65536)
                return 0;
        json_auto_t *j = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, &e);
        if (!j)
                return 0;
        check_properties(j);
        check_properties(json_object_get(j, "desired"));
        check_properties(json_object_get(j, "reported"));
        return 0;
}
