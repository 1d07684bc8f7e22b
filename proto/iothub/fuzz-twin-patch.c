/* Fuzz target: twin patches (limits, merge, diff round trips) and twin topics */
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/twin-patch.h"
#include "proto/iothub/twin-topic.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* Merging a patch into nothing: a document, which never holds a null. */
static json_t *document_from(const json_t *patch) {
        json_t *d = json_object();
        if (!d)
                abort();
        if (twin_merge(d, patch) < 0)
                abort();
        if (twin_properties_check(d, false, NULL) < 0)
                abort();
        return d;
}

static void check_patches(const json_t *p1, const json_t *p2) {
        _cleanup_(json_decrefp) json_t *a = document_from(p1);
        _cleanup_(json_decrefp) json_t *b = document_from(p2);

        (void) twin_document_size(a);

        /* diff(a, b) applied to a gives b; diff(a, a) is empty. */
        _cleanup_(json_decrefp) json_t *d = twin_diff(a, b);
        _cleanup_(json_decrefp) json_t *same = twin_diff(a, a);
        _cleanup_(json_decrefp) json_t *c = json_deep_copy(a);
        if (!d || !same || !c || json_object_size(same) != 0)
                abort();
        if (twin_merge(c, d) < 0 || !json_equal(c, b))
                abort();

        /* Applying a patch to a document keeps it a document. */
        if (twin_merge(a, p2) < 0 || twin_properties_check(a, false, NULL) < 0)
                abort();
}

static void check_topic(const char *topic) {
        TwinTopic t = TWIN_TOPIC_NULL;
        _cleanup_free_ char *s = NULL;

        if (twin_topic_parse(topic, &t) < 0)
                return;
        if (t.kind < 0 || t.kind >= _TWIN_TOPIC_KIND_MAX || (t.kind == TWIN_TOPIC_DESIRED && t.version < 0))
                abort();
        /* A response we format parses back to itself. */
        if (t.rid && t.kind == TWIN_TOPIC_RESPONSE && t.status >= 100) {
                TwinTopic t2 = TWIN_TOPIC_NULL;
                if (twin_topic_format_response(t.status, t.rid, t.version, &s) < 0)
                        abort();
                if (twin_topic_parse(s + strlen("$iothub/"), &t2) < 0 || t2.status != t.status ||
                    t2.version != t.version || strcmp(t2.rid, t.rid) != 0)
                        abort();
                twin_topic_deinit(&t2);
        }
        twin_topic_deinit(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        log_set_max_level(LOG_CRIT);
        if (size > TWIN_PATCH_BYTES_MAX * 2)
                return 0;

        /* Two patches separated by a NUL byte, or one patch applied to itself. */
        const uint8_t *sep = memchr(data, 0, size);
        size_t len1 = sep ? (size_t) (sep - data) : size;
        const uint8_t *second = sep ? sep + 1 : data;
        size_t len2 = sep ? size - len1 - 1 : size;

        _cleanup_(json_decrefp) json_t *p1 = NULL;
        _cleanup_(json_decrefp) json_t *p2 = NULL;
        if (twin_patch_parse(data, len1, &p1, NULL) >= 0 && twin_patch_parse(second, len2, &p2, NULL) >= 0)
                check_patches(p1, p2);

        _cleanup_free_ char *topic = strndup((const char *) data, len1);
        if (topic)
                check_topic(topic);
        return 0;
}
