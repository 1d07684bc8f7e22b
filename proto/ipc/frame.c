/* Framing on edgehub's Unix sockets: length-prefixed tagged fields */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/ipc/frame.h"
#include "proto/util/cleanup.h"

static uint16_t get_u16(const uint8_t *p) {
        return (uint16_t) ((uint16_t) p[0] << 8 | p[1]);
}

static uint32_t get_u32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static void put_u16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

static void put_u32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

int frame_header_parse(const uint8_t header[FRAME_HEADER_SIZE], uint32_t *ret_len) {
        uint32_t len = get_u32(header);

        if (len < 2 || len > FRAME_BODY_MAX)
                return -EBADMSG;
        *ret_len = len;
        return 0;
}

int frame_parse(Frame *f, const uint8_t *body, size_t len) {
        Frame parsed = { .n_fields = 0 };
        size_t off = 2;

        if (len < 2 || len > FRAME_BODY_MAX)
                return -EBADMSG;
        parsed.type = get_u16(body);

        while (off < len) {
                if (len - off < 6)
                        return -EBADMSG;
                if (parsed.n_fields >= FRAME_FIELDS_MAX)
                        return -EBADMSG;
                uint16_t tag = get_u16(body + off);
                uint32_t flen = get_u32(body + off + 2);
                off += 6;
                if (flen > len - off)
                        return -EBADMSG;
                parsed.fields[parsed.n_fields++] = (FrameField) {
                        .tag = tag,
                        .len = flen,
                        .data = body + off,
                };
                off += flen;
        }

        *f = parsed;
        return 0;
}

const FrameField *frame_get(const Frame *f, uint16_t tag) {
        for (size_t i = 0; i < f->n_fields; i++)
                if (f->fields[i].tag == tag)
                        return &f->fields[i];
        return NULL;
}

int frame_get_string(const Frame *f, uint16_t tag, char **ret) {
        const FrameField *field = frame_get(f, tag);

        if (!field)
                return -ENOENT;
        if (memchr(field->data, 0, field->len))
                return -EBADMSG;
        char *s = malloc(field->len + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s, field->data, field->len);
        s[field->len] = 0;
        *ret = s;
        return 0;
}

int frame_get_u64(const Frame *f, uint16_t tag, uint64_t *ret) {
        const FrameField *field = frame_get(f, tag);

        if (!field)
                return -ENOENT;
        if (field->len != 8)
                return -EBADMSG;
        *ret = (uint64_t) get_u32(field->data) << 32 | get_u32(field->data + 4);
        return 0;
}

int frame_get_u32(const Frame *f, uint16_t tag, uint32_t *ret) {
        const FrameField *field = frame_get(f, tag);

        if (!field)
                return -ENOENT;
        if (field->len != 4)
                return -EBADMSG;
        *ret = get_u32(field->data);
        return 0;
}

static void builder_reserve(FrameBuilder *b, size_t extra) {
        if (b->error)
                return;
        if (b->len + extra - FRAME_HEADER_SIZE > FRAME_BODY_MAX) {
                b->error = -EMSGSIZE;
                return;
        }
        if (b->len + extra <= b->cap)
                return;
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + extra)
                cap *= 2;
        uint8_t *buf = realloc(b->buf, cap);
        if (!buf) {
                b->error = -ENOMEM;
                return;
        }
        b->buf = buf;
        b->cap = cap;
}

void frame_builder_init(FrameBuilder *b, uint16_t type) {
        frame_builder_deinit(b);
        builder_reserve(b, FRAME_HEADER_SIZE + 2);
        if (b->error)
                return;
        put_u32(b->buf, 0);
        put_u16(b->buf + FRAME_HEADER_SIZE, type);
        b->len = FRAME_HEADER_SIZE + 2;
}

void frame_builder_deinit(FrameBuilder *b) {
        free(b->buf);
        *b = FRAME_BUILDER_NULL;
}

void frame_builder_add(FrameBuilder *b, uint16_t tag, const void *data, size_t len) {
        if (len > FRAME_BODY_MAX) {
                if (!b->error)
                        b->error = -EMSGSIZE;
                return;
        }
        builder_reserve(b, 6 + len);
        if (b->error)
                return;
        put_u16(b->buf + b->len, tag);
        put_u32(b->buf + b->len + 2, (uint32_t) len);
        if (len > 0)
                memcpy(b->buf + b->len + 6, data, len);
        b->len += 6 + len;
}

void frame_builder_add_string(FrameBuilder *b, uint16_t tag, const char *s) {
        frame_builder_add(b, tag, s, strlen(s));
}

void frame_builder_add_u64(FrameBuilder *b, uint16_t tag, uint64_t v) {
        uint8_t raw[8];

        put_u32(raw, (uint32_t) (v >> 32));
        put_u32(raw + 4, (uint32_t) v);
        frame_builder_add(b, tag, raw, sizeof(raw));
}

void frame_builder_add_u32(FrameBuilder *b, uint16_t tag, uint32_t v) {
        uint8_t raw[4];

        put_u32(raw, v);
        frame_builder_add(b, tag, raw, sizeof(raw));
}

int frame_builder_finish(FrameBuilder *b) {
        if (!b->error && !b->buf)
                b->error = -EINVAL;
        if (b->error)
                return b->error;
        put_u32(b->buf, (uint32_t) (b->len - FRAME_HEADER_SIZE));
        return 0;
}

uint64_t now_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

uint64_t realtime_msec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000u + (uint64_t) ts.tv_nsec / 1000000u;
}

static int wait_fd(int fd, short events, uint64_t deadline_usec) {
        for (;;) {
                uint64_t now = now_usec();
                if (now >= deadline_usec)
                        return -ETIMEDOUT;
                uint64_t left_ms = (deadline_usec - now + 999) / 1000;
                struct pollfd p = { .fd = fd, .events = events };
                int r = poll(&p, 1, left_ms > 60000 ? 60000 : (int) left_ms);
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (r > 0)
                        return 0;
        }
}

int frame_send(int fd, const uint8_t *buf, size_t len, uint64_t deadline_usec) {
        size_t off = 0;

        while (off < len) {
                ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return errno == EPIPE ? -ECONNRESET : -errno;
                        int r = wait_fd(fd, POLLOUT, deadline_usec);
                        if (r < 0)
                                return r;
                        continue;
                }
                off += (size_t) n;
        }
        return 0;
}

static int read_exact(int fd, uint8_t *buf, size_t len, uint64_t deadline_usec) {
        size_t off = 0;

        while (off < len) {
                ssize_t n = recv(fd, buf + off, len - off, MSG_DONTWAIT);
                if (n == 0)
                        return -ECONNRESET;
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                return -errno;
                        int r = wait_fd(fd, POLLIN, deadline_usec);
                        if (r < 0)
                                return r;
                        continue;
                }
                off += (size_t) n;
        }
        return 0;
}

/*
 * Replies are small and arrive after a round trip: wait first, then take
 * the header and (usually) the whole body in one recv(). The broker plugin
 * makes this call once per device message on the broker's only thread, so
 * every system call saved here is throughput.
 */
int frame_recv(int fd, uint8_t **ret_body, size_t *ret_len, uint64_t deadline_usec) {
        uint8_t first[512];
        size_t have = 0;
        uint32_t len;
        int r;

        while (have < FRAME_HEADER_SIZE) {
                r = wait_fd(fd, POLLIN, deadline_usec);
                if (r < 0)
                        return r;
                ssize_t n = recv(fd, first + have, sizeof(first) - have, MSG_DONTWAIT);
                if (n == 0)
                        return -ECONNRESET;
                if (n < 0) {
                        if (errno == EINTR || errno == EAGAIN)
                                continue;
                        return -errno;
                }
                have += (size_t) n;
        }
        r = frame_header_parse(first, &len);
        if (r < 0)
                return r;

        /* A stream may hold more than one frame only if the peer broke the protocol. */
        if (have - FRAME_HEADER_SIZE > len)
                return -EBADMSG;

        _cleanup_free_ uint8_t *body = malloc(len);
        if (!body)
                return -ENOMEM;
        memcpy(body, first + FRAME_HEADER_SIZE, have - FRAME_HEADER_SIZE);
        r = read_exact(fd, body + (have - FRAME_HEADER_SIZE), len - (have - FRAME_HEADER_SIZE), deadline_usec);
        if (r < 0)
                return r;

        *ret_body = TAKE_PTR(body);
        *ret_len = len;
        return 0;
}
