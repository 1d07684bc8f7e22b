/* Fuzz target: hub-store's status reply as twin-sync reads the uplink state from it */
#include <stdint.h>
#include <stdlib.h>

#include "twin-sync/uplink-query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        UplinkKnown u = _UPLINK_KNOWN_INVALID;
        int r = uplink_status_parse(data, size, &u);

        if (r < 0 ? r != -EBADMSG : (u < 0 || u >= _UPLINK_KNOWN_MAX))
                abort(); /* a refusal is -EBADMSG; an answer is one of the states */
        return 0;
}
