/* Framing on edgehub's Unix sockets: length-prefixed tagged fields */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Wire format, all integers big-endian:
 *
 *   u32 body length (<= FRAME_BODY_MAX)
 *   body: u16 type, then fields until the end: { u16 tag, u32 length, bytes }
 *
 * Every peer on a socket is untrusted: frame_parse() is the one parser of
 * these bytes (fuzz-frame.c). Parsed fields point into the caller's buffer.
 * Message types and tags live in proto/ipc/wire.h.
 */
#define FRAME_HEADER_SIZE 4u
#define FRAME_BODY_MAX (1024u * 1024u)
#define FRAME_FIELDS_MAX 32u

typedef struct FrameField {
        uint16_t tag;
        uint32_t len;
        const uint8_t *data;
} FrameField;

typedef struct Frame {
        uint16_t type;
        size_t n_fields;
        FrameField fields[FRAME_FIELDS_MAX];
} Frame;

#define FRAME_NULL ((Frame){})

/* Parses a body (without its length prefix). -EBADMSG on any malformation. */
int frame_parse(Frame *f, const uint8_t *body, size_t len);
/* Reads the length prefix; -EBADMSG when it exceeds FRAME_BODY_MAX. */
int frame_header_parse(const uint8_t header[FRAME_HEADER_SIZE], uint32_t *ret_len);

/* First field with this tag, or NULL. */
const FrameField *frame_get(const Frame *f, uint16_t tag);
/* Copies a field as a NUL-terminated string: -ENOENT absent, -EBADMSG on an embedded NUL. */
int frame_get_string(const Frame *f, uint16_t tag, char **ret);
/* A u64/u32 field: -ENOENT absent, -EBADMSG wrong length. */
int frame_get_u64(const Frame *f, uint16_t tag, uint64_t *ret);
int frame_get_u32(const Frame *f, uint16_t tag, uint32_t *ret);

/* Builds a frame in a growing buffer (length prefix included). */
typedef struct FrameBuilder {
        uint8_t *buf;
        size_t len;
        size_t cap;
        int error; /* sticky: the first allocation or size error */
} FrameBuilder;

#define FRAME_BUILDER_NULL ((FrameBuilder){})

void frame_builder_init(FrameBuilder *b, uint16_t type);
void frame_builder_deinit(FrameBuilder *b);
void frame_builder_add(FrameBuilder *b, uint16_t tag, const void *data, size_t len);
void frame_builder_add_string(FrameBuilder *b, uint16_t tag, const char *s);
void frame_builder_add_u64(FrameBuilder *b, uint16_t tag, uint64_t v);
void frame_builder_add_u32(FrameBuilder *b, uint16_t tag, uint32_t v);
/* Patches the length prefix; returns the sticky error, or 0. b->buf/b->len are the frame. */
int frame_builder_finish(FrameBuilder *b);

/*
 * Blocking I/O with a deadline (CLOCK_MONOTONIC, µs), for clients such as
 * the broker plugin and hubctl. -ETIMEDOUT when the deadline passes,
 * -ECONNRESET when the peer closes. frame_recv() returns the body in *ret_body.
 */
int frame_send(int fd, const uint8_t *buf, size_t len, uint64_t deadline_usec);
int frame_recv(int fd, uint8_t **ret_body, size_t *ret_len, uint64_t deadline_usec);

uint64_t now_usec(void); /* CLOCK_MONOTONIC */
uint64_t realtime_msec(void); /* CLOCK_REALTIME, milliseconds since the epoch */
