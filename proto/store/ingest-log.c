/* The ingest log: segment writer, record parser and buffered reader */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "proto/ipc/wire.h"
#include "proto/store/ingest-log.h"
#include "proto/util/cleanup.h"

#define READ_CHUNK (256u * 1024u)

struct IngestWriter {
        char name[INGEST_SEGMENT_NAME_MAX]; /* of the current segment */
        char *dir;
        int dir_fd;
        int fd;                 /* current segment; -1: open a new one at the next append */
        uint64_t size;          /* bytes in the current segment */
        uint64_t last_start_ns; /* names strictly increase within one writer */
        FrameBuilder body;      /* reused: the record's body */
        uint8_t *rec;           /* reused: header + body, written at once */
        size_t rec_cap;
};

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = v >> 24;
        p[1] = v >> 16;
        p[2] = v >> 8;
        p[3] = v;
}

static uint32_t get_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

int ingest_writer_open(const char *dir, IngestWriter **ret) {
        IngestWriter *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->fd = -1;
        w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (w->dir_fd < 0) {
                int r = -errno;
                free(w);
                return r;
        }
        w->dir = strdup(dir);
        if (!w->dir) {
                ingest_writer_free(w);
                return -ENOMEM;
        }
        *ret = w;
        return 0;
}

IngestWriter *ingest_writer_free(IngestWriter *w) {
        if (!w)
                return NULL;
        safe_close(w->fd);
        safe_close(w->dir_fd);
        frame_builder_deinit(&w->body);
        free(w->rec);
        free(w->dir);
        free(w);
        return NULL;
}

static int writer_new_segment(IngestWriter *w) {
        struct timespec ts;
        char name[INGEST_SEGMENT_NAME_MAX];

        w->fd = safe_close(w->fd);
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t t = (uint64_t) ts.tv_sec * UINT64_C(1000000000) + (uint64_t) ts.tv_nsec;
        if (t <= w->last_start_ns)
                t = w->last_start_ns + 1;

        for (unsigned attempt = 0; attempt < 16; attempt++, t++) {
                (void) snprintf(name, sizeof(name), "%020" PRIu64 "-%ld.log", t, (long) getpid());
                /* 0640: under edgehub-run the plugin (the broker's user) writes, hub-store reads by group. */
                int fd = openat(w->dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
                if (fd < 0 && errno == EEXIST)
                        continue;
                if (fd < 0)
                        return -errno;
                /* Invariant 1 under power loss: the new name must be on disk before records in it count. */
                if (fsync(w->dir_fd) < 0) {
                        int r = -errno;
                        (void) unlinkat(w->dir_fd, name, 0);
                        safe_close(fd);
                        return r;
                }
                w->fd = fd;
                w->size = 0;
                memcpy(w->name, name, sizeof(name));
                w->last_start_ns = t;
                return 0;
        }
        return -EEXIST;
}

static int writer_build(IngestWriter *w, const char *identity, const char *properties, const void *payload,
                        size_t len, const char *output, uint64_t time_ms, size_t *ret_len) {
        FrameBuilder *b = &w->body;

        frame_builder_init(b, WIRE_STORE_REQUEST);
        frame_builder_add_string(b, WIRE_IDENTITY, identity);
        frame_builder_add_string(b, WIRE_PROPERTIES, properties ? properties : "");
        frame_builder_add(b, WIRE_PAYLOAD, payload, len);
        if (output)
                frame_builder_add_string(b, WIRE_OUTPUT, output);
        frame_builder_add_u64(b, WIRE_TIME_MS, time_ms);
        int r = frame_builder_finish(b);
        if (r < 0)
                return r;

        const uint8_t *body = b->buf + FRAME_HEADER_SIZE;
        size_t body_len = b->len - FRAME_HEADER_SIZE;
        size_t need = INGEST_RECORD_HEADER_SIZE + body_len;
        if (need > w->rec_cap) {
                uint8_t *p = realloc(w->rec, need);
                if (!p)
                        return -ENOMEM;
                w->rec = p;
                w->rec_cap = need;
        }
        put_be32(w->rec, (uint32_t) body_len);
        put_be32(w->rec + 4, (uint32_t) crc32(0L, body, (uInt) body_len));
        memcpy(w->rec + INGEST_RECORD_HEADER_SIZE, body, body_len);
        *ret_len = need;
        return 0;
}

int ingest_writer_append(IngestWriter *w, const char *identity, const char *properties, const void *payload,
                         size_t len, const char *output, uint64_t time_ms) {
        size_t n;
        int r;

        r = writer_build(w, identity, properties, payload, len, output, time_ms, &n);
        if (r < 0)
                return r;

        if (w->fd >= 0 && w->size > 0 && w->size + n > INGEST_SEGMENT_MAX)
                w->fd = safe_close(w->fd);
        if (w->fd < 0) {
                r = writer_new_segment(w);
                if (r < 0)
                        return r;
        }

        /* Invariant 1: one write() per record; anything less is a torn tail nobody acknowledged. */
        ssize_t k = write(w->fd, w->rec, n);
        if (k < 0 || (size_t) k != n) {
                r = k < 0 ? -errno : -EIO;
                /* Never append after a torn record: the next record goes to a new segment. */
                w->fd = safe_close(w->fd);
                return r;
        }
        w->size += n;
        return 0;
}

size_t ingest_record_size(const char *identity, const char *properties, size_t len, const char *output) {
        /* The record header, the body's type, then a tag and a length before each field. */
        size_t n = INGEST_RECORD_HEADER_SIZE + 2 + 6 + strlen(identity) + 6 + (properties ? strlen(properties) : 0) +
                   6 + len + 6 + sizeof(uint64_t);
        if (output)
                n += 6 + strlen(output);
        return n;
}

int ingest_writer_rotate(IngestWriter *w) {
        if (w->fd < 0 || w->size == 0)
                return 0;
        return writer_new_segment(w);
}

int ingest_writer_sync(IngestWriter *w) {
        if (w->fd < 0)
                return 0;
        if (fdatasync(w->fd) < 0) {
                int r = -errno;
                /* After a failed sync the page cache state is unknown: move on to a new segment. */
                w->fd = safe_close(w->fd);
                return r;
        }
        return 0;
}

const char *ingest_writer_segment(const IngestWriter *w, uint64_t *ret_size) {
        *ret_size = w->fd >= 0 ? w->size : 0;
        return w->fd >= 0 ? w->name : NULL;
}

int ingest_room_create(const char *path, IngestRoom **ret) {
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0)
                return -errno;
        /* Same size again after a restart: a plugin's mapping of the old one stays valid. */
        if (ftruncate(fd, sizeof(IngestRoom)) < 0)
                return -errno;
        void *p = mmap(NULL, sizeof(IngestRoom), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        *ret = p;
        return 0;
}

void ingest_room_publish(IngestRoom *m, const char *segment, uint64_t offset, uint64_t allow) {
        uint32_t seq = __atomic_load_n(&m->seq, __ATOMIC_RELAXED);

        __atomic_store_n(&m->seq, seq | 1u, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_RELEASE);
        __atomic_store_n(&m->magic, INGEST_ROOM_MAGIC, __ATOMIC_RELAXED);
        __atomic_store_n(&m->allow, allow, __ATOMIC_RELAXED);
        __atomic_store_n(&m->offset, offset, __ATOMIC_RELAXED);
        size_t n = segment ? strnlen(segment, INGEST_SEGMENT_NAME_MAX - 1) : 0;
        for (size_t i = 0; i < INGEST_SEGMENT_NAME_MAX; i++)
                __atomic_store_n(&m->segment[i], i < n ? segment[i] : 0, __ATOMIC_RELAXED);
        __atomic_store_n(&m->seq, (seq | 1u) + 1u, __ATOMIC_RELEASE);
}

int ingest_room_open(const char *path, const IngestRoom **ret) {
        struct stat st;
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || (size_t) st.st_size < sizeof(IngestRoom))
                return -ENOENT; /* not written yet */
        void *p = mmap(NULL, sizeof(IngestRoom), PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return -errno;
        *ret = p;
        return 0;
}

int ingest_room_read(const IngestRoom *m, IngestRoom *ret) {
        for (unsigned attempt = 0; attempt < 1000; attempt++) {
                uint32_t seq = __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE);
                if (seq & 1u)
                        continue;
                IngestRoom c = {
                        .magic = __atomic_load_n(&m->magic, __ATOMIC_RELAXED),
                        .seq = seq,
                        .allow = __atomic_load_n(&m->allow, __ATOMIC_RELAXED),
                        .offset = __atomic_load_n(&m->offset, __ATOMIC_RELAXED),
                };
                for (size_t i = 0; i < INGEST_SEGMENT_NAME_MAX; i++)
                        c.segment[i] = __atomic_load_n(&m->segment[i], __ATOMIC_RELAXED);
                __atomic_thread_fence(__ATOMIC_ACQUIRE);
                if (__atomic_load_n(&m->seq, __ATOMIC_RELAXED) != seq)
                        continue;
                if (c.magic != INGEST_ROOM_MAGIC)
                        return -EBADMSG;
                c.segment[INGEST_SEGMENT_NAME_MAX - 1] = 0;
                *ret = c;
                return 0;
        }
        return -EAGAIN;
}

void ingest_room_unmap(const IngestRoom *m) {
        if (m)
                (void) munmap((void *) m, sizeof(IngestRoom));
}

void ingest_record_deinit(IngestRecord *r) {
        free(r->identity);
        free(r->properties);
        free(r->output);
        free(r->payload);
        *r = INGEST_RECORD_NULL;
}

int ingest_record_parse(const uint8_t *buf, size_t len, IngestRecord *ret, size_t *ret_size) {
        _cleanup_(ingest_record_deinit) IngestRecord rec = INGEST_RECORD_NULL;
        Frame f;
        int r;

        if (len < INGEST_RECORD_HEADER_SIZE)
                return -EAGAIN;
        uint32_t body_len = get_be32(buf);
        if (body_len < 2 || body_len > FRAME_BODY_MAX)
                return -EBADMSG;
        if (len - INGEST_RECORD_HEADER_SIZE < body_len)
                return -EAGAIN;
        const uint8_t *body = buf + INGEST_RECORD_HEADER_SIZE;
        if ((uint32_t) crc32(0L, body, body_len) != get_be32(buf + 4))
                return -EBADMSG;

        r = frame_parse(&f, body, body_len);
        if (r < 0)
                return -EBADMSG;
        if (f.type != WIRE_STORE_REQUEST)
                return -EBADMSG;

        r = frame_get_string(&f, WIRE_IDENTITY, &rec.identity);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        if (!*rec.identity)
                return -EBADMSG;
        r = frame_get_string(&f, WIRE_PROPERTIES, &rec.properties);
        if (r < 0)
                return r == -ENOMEM ? r : -EBADMSG;
        r = frame_get_string(&f, WIRE_OUTPUT, &rec.output);
        if (r < 0 && r != -ENOENT)
                return r == -ENOMEM ? r : -EBADMSG;
        r = frame_get_u64(&f, WIRE_TIME_MS, &rec.time_ms);
        if (r < 0)
                return -EBADMSG;
        const FrameField *p = frame_get(&f, WIRE_PAYLOAD);
        if (!p)
                return -EBADMSG;
        rec.payload = malloc(p->len ? p->len : 1);
        if (!rec.payload)
                return -ENOMEM;
        memcpy(rec.payload, p->data, p->len);
        rec.payload_len = p->len;

        *ret = rec;
        rec = INGEST_RECORD_NULL;
        *ret_size = INGEST_RECORD_HEADER_SIZE + body_len;
        return 0;
}

void ingest_reader_deinit(IngestReader *r) {
        free(r->buf);
        *r = INGEST_READER_NULL;
}

/* Makes buf hold the file from offset on, at least want bytes if the file has them. */
static int reader_fill(IngestReader *r, int fd, uint64_t offset, size_t want) {
        size_t cap = want > READ_CHUNK ? want : READ_CHUNK;
        if (cap > r->cap) {
                uint8_t *p = realloc(r->buf, cap);
                if (!p)
                        return -ENOMEM;
                r->buf = p;
                r->cap = cap;
        }
        r->fd = fd;
        r->buf_offset = offset;
        r->len = 0;
        while (r->len < r->cap) {
                ssize_t k = pread(fd, r->buf + r->len, r->cap - r->len, (off_t) (offset + r->len));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                r->len += (size_t) k;
        }
        return 0;
}

int ingest_reader_next(IngestReader *r, int fd, uint64_t offset, IngestRecord *ret, size_t *ret_size) {
        int k;

        /* Cached bytes stay valid: segments are only ever appended to. */
        if (r->fd == fd && offset >= r->buf_offset && offset <= r->buf_offset + r->len) {
                size_t at = (size_t) (offset - r->buf_offset);
                k = ingest_record_parse(r->buf + at, r->len - at, ret, ret_size);
                if (k != -EAGAIN)
                        return k;
        }

        k = reader_fill(r, fd, offset, READ_CHUNK);
        if (k < 0)
                return k;
        k = ingest_record_parse(r->buf, r->len, ret, ret_size);
        if (k != -EAGAIN || r->len < INGEST_RECORD_HEADER_SIZE)
                return k;

        /* A record larger than one chunk. */
        size_t need = INGEST_RECORD_HEADER_SIZE + get_be32(r->buf);
        if (need <= r->len)
                return -EAGAIN;
        k = reader_fill(r, fd, offset, need);
        if (k < 0)
                return k;
        return ingest_record_parse(r->buf, r->len, ret, ret_size);
}

bool ingest_segment_name_is_valid(const char *name) {
        size_t i = 0;

        for (; i < 20; i++)
                if (name[i] < '0' || name[i] > '9')
                        return false;
        if (name[i++] != '-')
                return false;
        size_t digits = 0;
        for (; name[i] >= '0' && name[i] <= '9'; i++)
                digits++;
        return digits > 0 && digits <= 10 && strcmp(name + i, ".log") == 0;
}
