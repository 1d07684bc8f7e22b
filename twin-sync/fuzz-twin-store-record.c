/* Fuzz target: a twin record as read back from twin-sync's store */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "twin-sync/twin-store.h"
#include "twin-sync/twin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A record that decodes gives a twin every later step can use: a view, and what the device still has to see. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(twin_freep) Twin *t = NULL;

        log_set_max_level(LOG_CRIT);
        if (size > 65536)
                return 0;
        if (twin_new(&t, "dev-1") < 0)
                return 0;
        if (twin_store_record_decode(t, data, size) < 0)
                return 0;
        if (!json_is_object(t->desired) || !json_is_object(t->reported) || !json_is_object(t->seen) ||
            t->next_seq < 1 || t->desired_version < 0 || t->reported_version < 0 || t->seen_version < 0)
                abort();
        json_auto_t *view = twin_view(t);
        json_auto_t *pending = twin_pending_desired(t);
        (void) view;
        (void) pending;
        return 0;
}
