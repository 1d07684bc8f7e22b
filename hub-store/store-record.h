/* Message-store records: what one stored message holds */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto/ipc/frame.h"

/*
 * A record is a proto/ipc/frame.h body (type STORE_RECORD_V1, TLV fields), so
 * it has the one parser we already fuzz instead of a second format. Strings
 * are stored with their NUL, so a decoded record's strings point straight
 * into the value without copies.
 */
enum {
        STORE_RECORD_V1 = 0x5201,
};

enum {
        STORE_RECORD_TIME = 1,   /* u64: enqueued, realtime ms */
        STORE_RECORD_IDENTITY,   /* text+NUL */
        STORE_RECORD_PROPERTIES, /* text+NUL: the canonical property bag */
        STORE_RECORD_OUTPUT,     /* text+NUL, optional: module output name */
        STORE_RECORD_PAYLOAD,    /* bytes */
};

typedef struct StoreMessage {
        uint64_t time_ms;
        const char *identity;
        const char *properties;
        const char *output;     /* NULL if none */
        const uint8_t *payload;
        size_t payload_len;
} StoreMessage;

/* Fills b (initialised here) with the record; its value is b->buf + FRAME_HEADER_SIZE. */
int store_record_encode(const StoreMessage *m, FrameBuilder *b);
/* The value bytes of an encoded record. */
static inline const uint8_t *store_record_value(const FrameBuilder *b, size_t *ret_len) {
        *ret_len = b->len - FRAME_HEADER_SIZE;
        return b->buf + FRAME_HEADER_SIZE;
}
/* Decodes a value; pointers in *ret point into it. -EBADMSG if it is not a valid record. */
int store_record_decode(const void *value, size_t len, StoreMessage *ret);
/* Only the time field (for counters at start-up). */
int store_record_decode_time(const void *value, size_t len, uint64_t *ret);
