/* Fuzz target: an identity record of the device scope as read back from disk, with an encode round trip */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth-cache/scope-store.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: "{identity name}\n{record bytes}" (the key's name part and the
 * value). A record that decodes encodes to the current version, which
 * decodes and encodes again to the same bytes (an older version's record
 * is written anew in the current one, so its bytes may differ).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(identity_freep) Identity *id = NULL;
        _cleanup_(identity_freep) Identity *id2 = NULL;
        _cleanup_free_ uint8_t *again = NULL, *again2 = NULL;
        size_t again_len, again2_len;

        log_set_max_level(LOG_CRIT);
        if (size > 8192)
                return 0;
        const uint8_t *nl = memchr(data, '\n', size);
        if (!nl)
                return 0;
        size_t name_len = (size_t) (nl - data);
        const uint8_t *record = nl + 1;
        size_t record_len = size - name_len - 1;

        if (scope_record_decode((const char *) data, name_len, record, record_len, &id) < 0)
                return 0;
        if (strlen(id->name) != name_len || memcmp(id->name, data, name_len) != 0)
                abort();
        if (scope_record_encode(id, &again, &again_len) < 0)
                abort();
        if (scope_record_decode(id->name, name_len, again, again_len, &id2) < 0)
                abort();
        if (scope_record_encode(id2, &again2, &again2_len) < 0)
                abort();
        if (again2_len != again_len || memcmp(again2, again, again_len) != 0)
                abort();
        return 0;
}
