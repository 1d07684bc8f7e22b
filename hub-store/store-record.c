/* Message-store records: what one stored message holds */
#include <errno.h>
#include <string.h>

#include "hub-store/store-record.h"

int store_record_encode(const StoreMessage *m, FrameBuilder *b) {
        *b = FRAME_BUILDER_NULL;
        frame_builder_init(b, STORE_RECORD_V1);
        frame_builder_add_u64(b, STORE_RECORD_TIME, m->time_ms);
        frame_builder_add(b, STORE_RECORD_IDENTITY, m->identity, strlen(m->identity) + 1);
        frame_builder_add(b, STORE_RECORD_PROPERTIES, m->properties, strlen(m->properties) + 1);
        if (m->output)
                frame_builder_add(b, STORE_RECORD_OUTPUT, m->output, strlen(m->output) + 1);
        frame_builder_add(b, STORE_RECORD_PAYLOAD, m->payload, m->payload_len);
        return frame_builder_finish(b);
}

/* A field holding exactly one NUL-terminated string. */
static int record_string(const Frame *f, uint16_t tag, bool optional, const char **ret) {
        const FrameField *field = frame_get(f, tag);

        if (!field) {
                if (!optional)
                        return -EBADMSG;
                *ret = NULL;
                return 0;
        }
        if (field->len == 0 || field->data[field->len - 1] != 0 || memchr(field->data, 0, field->len - 1))
                return -EBADMSG;
        *ret = (const char *) field->data;
        return 0;
}

int store_record_decode(const void *value, size_t len, StoreMessage *ret) {
        StoreMessage m = {};
        Frame f;
        int r;

        r = frame_parse(&f, value, len);
        if (r < 0)
                return -EBADMSG;
        if (f.type != STORE_RECORD_V1)
                return -EBADMSG;
        if (frame_get_u64(&f, STORE_RECORD_TIME, &m.time_ms) < 0)
                return -EBADMSG;
        r = record_string(&f, STORE_RECORD_IDENTITY, false, &m.identity);
        if (r >= 0)
                r = record_string(&f, STORE_RECORD_PROPERTIES, false, &m.properties);
        if (r >= 0)
                r = record_string(&f, STORE_RECORD_OUTPUT, true, &m.output);
        if (r < 0)
                return r;
        const FrameField *payload = frame_get(&f, STORE_RECORD_PAYLOAD);
        if (!payload)
                return -EBADMSG;
        m.payload = payload->data;
        m.payload_len = payload->len;
        *ret = m;
        return 0;
}

int store_record_decode_time(const void *value, size_t len, uint64_t *ret) {
        Frame f;

        if (frame_parse(&f, value, len) < 0 || f.type != STORE_RECORD_V1)
                return -EBADMSG;
        if (frame_get_u64(&f, STORE_RECORD_TIME, ret) < 0)
                return -EBADMSG;
        return 0;
}
