/* Fuzz target: stored keys and records (read back from disk), with round trips */
#include <stdlib.h>
#include <string.h>

#include "hub-store/store-key.h"
#include "hub-store/store-record.h"
#include "proto/runtime/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_key(const uint8_t *data, size_t size) {
        StoreKeyParts p;
        StoreKey k;

        if (store_key_parse(data, size, &p) < 0)
                return;
        char *endpoint = strndup(p.endpoint, p.endpoint_len);
        char *identity = strndup(p.identity, p.identity_len);
        if (!endpoint || !identity)
                abort();
        /* A key that parses is exactly the key its parts format to. */
        if (store_key_format(&k, endpoint, p.priority, identity, p.seq) < 0 || k.len != size ||
            memcmp(k.buf, data, size) != 0 || p.prefix_len != size - 8)
                abort();
        free(endpoint);
        free(identity);
}

static void fuzz_record(const uint8_t *data, size_t size) {
        StoreMessage m, again;
        FrameBuilder b;
        size_t len;

        if (store_record_decode(data, size, &m) < 0)
                return;
        /* What decodes re-encodes to something that decodes the same. */
        if (store_record_encode(&m, &b) < 0)
                abort();
        const uint8_t *v = store_record_value(&b, &len);
        if (store_record_decode(v, len, &again) < 0 || again.time_ms != m.time_ms ||
            strcmp(again.identity, m.identity) != 0 || strcmp(again.properties, m.properties) != 0 ||
            (!again.output != !m.output) || (m.output && strcmp(again.output, m.output) != 0) ||
            again.payload_len != m.payload_len || memcmp(again.payload, m.payload, m.payload_len) != 0)
                abort();
        frame_builder_deinit(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        log_set_max_level(LOG_CRIT);
        if (size > FRAME_BODY_MAX)
                return 0;
        fuzz_key(data, size);
        fuzz_record(data, size);
        return 0;
}
