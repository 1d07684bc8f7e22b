/* Fuzz target: ingest-log records, as stored and with a valid CRC put in front of arbitrary bodies; the room file */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "proto/runtime/log.h"
#include "proto/store/ingest-log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse_all(const uint8_t *data, size_t size) {
        size_t at = 0;

        while (at < size) {
                IngestRecord rec = INGEST_RECORD_NULL;
                size_t n = 0;
                if (ingest_record_parse(data + at, size - at, &rec, &n) < 0)
                        return;
                /* Not assert(): the invariants must hold in -DNDEBUG builds too. */
                if (n < INGEST_RECORD_HEADER_SIZE || n > size - at || !rec.identity || !*rec.identity ||
                    !rec.properties || !rec.payload)
                        abort();
                ingest_record_deinit(&rec);
                at += n;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        log_set_max_level(LOG_CRIT);
        if (size > FRAME_BODY_MAX)
                return 0;

        parse_all(data, size);

        /* The same bytes as a body behind a valid header reach the body checks past the CRC. */
        uint8_t *rec = malloc(INGEST_RECORD_HEADER_SIZE + size + 1);
        if (!rec)
                return 0;
        uint32_t len = (uint32_t) size, crc = (uint32_t) crc32(0L, data, (uInt) size);
        const uint8_t header[INGEST_RECORD_HEADER_SIZE] = { len >> 24, len >> 16, len >> 8, len,
                                                            crc >> 24, crc >> 16, crc >> 8, crc };
        memcpy(rec, header, sizeof(header));
        if (size)
                memcpy(rec + INGEST_RECORD_HEADER_SIZE, data, size);
        parse_all(rec, INGEST_RECORD_HEADER_SIZE + size);
        free(rec);

        /* The first bytes as hub-store's room file, as the plugin maps it. */
        if (size >= sizeof(IngestRoom)) {
                IngestRoom m, copy;
                memcpy(&m, data, sizeof(m));
                if (ingest_room_read(&m, &copy) == 0 && strlen(copy.segment) >= INGEST_SEGMENT_NAME_MAX)
                        abort();
        }
        return 0;
}
