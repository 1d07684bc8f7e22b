/* The message store: durable ordered queues in RocksDB, with budget and TTL */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "hub-store/store-cursor.h"
#include "hub-store/store.h"
#include "proto/runtime/disk-reserve.h"
#include "proto/runtime/log.h"
#include "proto/store/kv.h"
#include "proto/util/cleanup.h"

/* A stream that removed this many records gets its dead key range compacted. */
#define STORE_COMPACT_AFTER_REMOVALS 50000u
/* So does the whole store once it removed as many and holds less than this (a backlog drained). */
#define STORE_COMPACT_ALL_BELOW_BYTES (1u << 20)
/* New messages are refused while the file system has less than this free (shared with twin-sync). */
#define STORE_DISK_RESERVE_BYTES DISK_RESERVE_BYTES
/* Free space is looked up at most this often, or after this many bytes written. */
#define STORE_DISK_CHECK_USEC 100000u
#define STORE_DISK_CHECK_BYTES (1u << 20)
/*
 * Imported records skip the WAL once the store holds this much and nothing
 * was read for delivery for this long: a backlog, the uplink down. A stream
 * being delivered keeps the WAL, so its records go out without waiting for
 * a flush (the route latency), and a flush is not asked for per message.
 */
#define STORE_UNLOGGED_MIN_BYTES (1u << 20)
#define STORE_UNLOGGED_IDLE_USEC 1000000u
/* The meta key of the durability mark (store_meta_put_imported()). */
#define STORE_META_MARK "unlogged-mark"

struct Store {
        Kv *kv;
        StoreOptions options;
        uint64_t next_seq;      /* global: every stream shares one order */
        uint64_t messages;
        uint64_t bytes;
        KeyMap streams;         /* prefix bytes -> StoreStream */
        bool dirty;             /* written since the last WAL sync */
        /*
         * A write failed (disk full, I/O error). RocksDB must not be written
         * again until reopened: its WAL writer refuses (and Debian's build
         * asserts) after an error. Reads still work.
         */
        bool broken;
        char *dir;
        KvOptions kv_options;
        uint64_t disk_checked_usec;
        uint64_t written_since_check;
        bool disk_low;
        size_t expire_cursor;   /* round-robin start of the next TTL slice */
        uint64_t removed_since_compact;

        /* STORE_ORIGIN_INGEST records written without the WAL (store.h). */
        uint64_t unlogged_lo;   /* the first one not known durable; 0: none waits */
        uint64_t unlogged_hi;   /* seq + 1 of the last one */
        uint64_t written_mark;  /* the last mark written: next_seq then */
        uint64_t durable_mark;  /* the mark the table files hold: records below it are durable */
        bool import_unlogged;   /* this import pass skips the WAL (store_import_begin()) */
        bool flush_wanted;      /* a reader stopped at a held record */
        bool held;              /* ... and must be restarted once it is durable */
        uint64_t last_read_usec;
        uint64_t generation;
};

static StoreStream *store_stream_free(StoreStream *st) {
        if (!st)
                return NULL;
        free(st->endpoint);
        free(st->identity);
        free(st);
        return NULL;
}
DEFINE_CLEANUP_FUNC(StoreStream, store_stream_free);

static int store_stream_new(Store *s, const char *endpoint, size_t elen, uint8_t priority,
                            const char *identity, size_t ilen, StoreStream **ret) {
        _cleanup_(store_stream_freep) StoreStream *st = calloc(1, sizeof(*st));
        int r;

        if (!st)
                return -ENOMEM;
        st->endpoint = strndup(endpoint, elen);
        st->identity = strndup(identity, ilen);
        if (!st->endpoint || !st->identity)
                return -ENOMEM;
        st->priority = priority;
        r = store_key_stream_prefix(&st->prefix, st->endpoint, priority, st->identity);
        if (r < 0)
                return r;
        r = key_map_put(&s->streams, st->prefix.buf, st->prefix.len, st);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(st);
        return 0;
}

StoreStream *store_stream_find(Store *s, const char *endpoint, uint8_t priority, const char *identity) {
        StoreKey prefix;

        if (store_key_stream_prefix(&prefix, endpoint, priority, identity) < 0)
                return NULL;
        return key_map_get(&s->streams, prefix.buf, prefix.len);
}

int store_stream_get(Store *s, const char *endpoint, uint8_t priority, const char *identity, StoreStream **ret) {
        StoreKey prefix;
        int r;

        r = store_key_stream_prefix(&prefix, endpoint, priority, identity);
        if (r < 0)
                return r;
        StoreStream *st = key_map_get(&s->streams, prefix.buf, prefix.len);
        if (!st) {
                r = store_stream_new(s, endpoint, strlen(endpoint), priority, identity, strlen(identity), &st);
                if (r < 0)
                        return r;
        }
        *ret = st;
        return 0;
}

size_t store_n_streams(const Store *s) {
        return key_map_size(&s->streams);
}

StoreStream *store_stream_at(const Store *s, size_t i) {
        return key_map_value_at(&s->streams, i);
}

/* A record's enqueue time; an undecodable one counts as ancient so the TTL sweep removes it. */
static uint64_t value_time(const void *value, size_t vlen) {
        uint64_t t;

        if (store_record_decode_time(value, vlen, &t) < 0)
                return 0;
        return t;
}

/* The stream's head becomes the cursor's record, or the stream is empty. */
static void stream_set_head_from(StoreStream *st, StoreCursor *c) {
        st->head_stale = false;
        if (st->messages == 0)
                return;
        if (!store_cursor_valid(c)) {
                /* Counters disagree with the store: trust the store, it is what survives. */
                log_warning("Stream '%s' counted %" PRIu64 " more record(s) than stored, correcting",
                            st->identity, st->messages);
                st->messages = 0;
                st->bytes = 0;
                return;
        }
        size_t vlen;
        const void *v = store_cursor_value(c, &vlen);
        st->head_seq = store_cursor_seq(c);
        st->head_time_ms = value_time(v, vlen);
}

/* A cursor over the stream's records, positioned at the first with seq >= from. */
static int stream_cursor(Store *s, StoreStream *st, uint64_t from, StoreCursor *ret) {
        store_cursor_init(ret, s->kv, &st->prefix, st->tail_seq);
        return store_cursor_seek(ret, from);
}

/* Makes head_seq and head_time_ms exact again (see StoreStream.head_stale). */
static int stream_resolve_head(Store *s, StoreStream *st) {
        _cleanup_(store_cursor_deinit) StoreCursor c = {};
        int r;

        if (!st->head_stale)
                return 0;
        if (st->messages == 0 || !s->kv) {
                st->head_stale = false;
                return 0;
        }
        r = stream_cursor(s, st, st->head_seq, &c);
        if (r < 0)
                return r;
        stream_set_head_from(st, &c);
        return 0;
}

uint64_t store_stream_head_time_ms(Store *s, StoreStream *st) {
        (void) stream_resolve_head(s, st);
        return st->messages > 0 ? st->head_time_ms : 0;
}

static void store_account_removed(Store *s, StoreStream *st, uint64_t n, uint64_t bytes) {
        n = n < st->messages ? n : st->messages;
        bytes = bytes < st->bytes ? bytes : st->bytes;
        st->messages -= n;
        st->bytes -= bytes;
        s->messages -= n < s->messages ? n : s->messages;
        s->bytes -= bytes < s->bytes ? bytes : s->bytes;
        st->removed_since_compact += n;
        s->removed_since_compact += n;
}

/* One pass over every record: counters, heads and the next sequence number. */
/* Forgets what the counters say about stored records; store_scan() recounts. */
static void store_reset_counters(Store *s) {
        for (size_t i = 0; i < key_map_size(&s->streams); i++) {
                StoreStream *st = key_map_value_at(&s->streams, i);
                st->messages = st->bytes = 0;
                st->head_seq = st->head_time_ms = st->tail_seq = 0;
                st->head_stale = false;
        }
        s->messages = s->bytes = 0;
}

static int store_scan(Store *s) {
        _cleanup_(kv_iter_freep) KvIter *it = NULL;
        const uint8_t tag = STORE_KEY_TAG;
        StoreStream *st = NULL;
        uint64_t max_seq = 0, bad = 0;
        bool any = false;
        int r;

        r = kv_iter_new(s->kv, &tag, 1, &it);
        if (r < 0)
                return r;
        for (; kv_iter_valid(it); kv_iter_next(it)) {
                size_t klen, vlen;
                const void *k = kv_iter_key(it, &klen);
                const void *v = kv_iter_value(it, &vlen);
                StoreKeyParts parts;

                if (store_key_parse(k, klen, &parts) < 0) {
                        bad++;
                        continue;
                }
                /* Records of one stream are contiguous: look the stream up once per run. */
                if (!st || st->prefix.len != parts.prefix_len || memcmp(st->prefix.buf, k, parts.prefix_len) != 0) {
                        st = key_map_get(&s->streams, k, parts.prefix_len);
                        if (!st) {
                                r = store_stream_new(s, parts.endpoint, parts.endpoint_len, parts.priority,
                                                     parts.identity, parts.identity_len, &st);
                                if (r < 0)
                                        return r;
                        }
                }
                if (st->messages == 0) {
                        st->head_seq = parts.seq;
                        st->head_time_ms = value_time(v, vlen);
                }
                st->tail_seq = parts.seq;
                st->messages++;
                st->bytes += klen + vlen;
                s->messages++;
                s->bytes += klen + vlen;
                if (!any || parts.seq > max_seq)
                        max_seq = parts.seq;
                any = true;
        }
        /* A scan cut short by corruption must not pass for a smaller store. */
        r = kv_iter_error(it);
        if (r < 0)
                return r;
        if (bad > 0)
                log_warning("Message store holds %" PRIu64 " key(s) that are not records, ignoring", bad);
        if (any && max_seq + 1 > s->next_seq)
                s->next_seq = max_seq + 1;
        if (s->next_seq == 0)
                s->next_seq = 1;
        return 0;
}

static int store_meta_key(const char *name, uint8_t *key, size_t *ret_len);

static int store_read_mark(Store *s, bool persisted, uint64_t *ret) {
        _cleanup_free_ void *val = NULL;
        uint8_t key[sizeof(STORE_META_MARK)];
        size_t klen, len = 0;
        uint64_t mark = 0;
        int r;

        r = store_meta_key(STORE_META_MARK, key, &klen);
        if (r < 0)
                return r;
        r = persisted ? kv_get_persisted(s->kv, key, klen, &val, &len) : kv_get(s->kv, key, klen, &val, &len);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0 && len == sizeof(mark))
                memcpy(&mark, val, sizeof(mark));
        *ret = mark;
        return 0;
}

/*
 * After an open: nothing waits for a flush, and what a crash recovered is
 * durable. Sequence numbers below the mark were handed out already, though
 * their records may be gone: a new record must never get one, or it would
 * pass for durable.
 */
static int store_unlogged_reset(Store *s) {
        uint64_t mark;
        int r;

        r = store_read_mark(s, false, &mark);
        if (r < 0)
                return r;
        s->unlogged_lo = s->unlogged_hi = 0;
        s->written_mark = s->durable_mark = mark;
        s->flush_wanted = s->held = false;
        if (s->next_seq < mark)
                s->next_seq = mark;
        s->generation++;
        return 0;
}

int store_open(const char *dir, const StoreOptions *o, Store **ret, char **ret_error) {
        _cleanup_(store_freep) Store *s = calloc(1, sizeof(*s));
        KvOptions kvo = { .sync_every_write = o->sync_every_write, .max_open_files = o->max_open_files };
        int r;

        if (!s)
                return -ENOMEM;
        s->options = *o;
        s->kv_options = kvo;
        s->dir = strdup(dir);
        if (!s->dir)
                return -ENOMEM;
        r = kv_open(dir, &kvo, &s->kv, ret_error);
        if (r < 0)
                return r;
        r = store_scan(s);
        if (r < 0)
                return r;
        r = store_unlogged_reset(s);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

Store *store_free(Store *s) {
        if (!s)
                return NULL;
        if (s->kv && s->dirty && !s->broken)
                (void) kv_sync_wal(s->kv);
        /* RocksDB flushes unlogged writes at close too; this says so, and gives the importer less to redo. */
        if (s->kv && s->unlogged_lo != 0 && !s->broken)
                (void) kv_flush(s->kv);
        s->kv = kv_close(s->kv);
        free(s->dir);
        for (size_t i = 0; i < key_map_size(&s->streams); i++)
                store_stream_free(key_map_value_at(&s->streams, i));
        key_map_deinit(&s->streams);
        free(s);
        return NULL;
}

/* Every failed write goes through here: see Store.broken. */
static int store_write_failed(Store *s, int r) {
        if (!s->broken)
                log_debug("Message store write failed (%s), no more writes until it is reopened", strerror(-r));
        s->broken = true;
        return r;
}

bool store_is_broken(const Store *s) {
        return s->broken;
}

int store_reopen(Store *s, char **ret_error) {
        Kv *kv;
        int r;

        /* Close first: the same folder cannot be opened twice (RocksDB's LOCK). Closing a writer that failed is safe. */
        s->kv = kv_close(s->kv);
        r = kv_open(s->dir, &s->kv_options, &kv, ret_error);
        if (r < 0)
                return r;
        s->kv = kv;
        store_reset_counters(s);
        r = store_scan(s);
        if (r < 0)
                return r;
        /* The failed RocksDB may have lost records that skipped the WAL: the importer reads its positions again. */
        r = store_unlogged_reset(s);
        if (r < 0)
                return r;
        s->broken = false;
        s->dirty = false;
        return 0;
}

int store_checkpoint(Store *s, const char *dir, char **ret_error) {
        if (s->broken)
                return -EIO; /* a failed WAL must not be read as if whole: reopen first */
        if (s->dirty && kv_sync_wal(s->kv) >= 0)
                s->dirty = false;
        return kv_checkpoint(s->kv, dir, ret_error);
}

int store_switch(Store *s, const char *dir, char **ret_error) {
        uint64_t messages = s->messages, bytes = s->bytes;
        _cleanup_free_ char *old = s->dir, *copy = strdup(dir);
        Kv *kv = NULL;
        int r;

        if (!copy)
                return -ENOMEM;
        s->kv = kv_close(s->kv);
        r = kv_open(dir, &s->kv_options, &kv, ret_error);
        if (r >= 0) {
                s->kv = kv;
                s->dir = TAKE_PTR(copy);
                store_reset_counters(s);
                r = store_scan(s);
                if (r >= 0)
                        r = store_unlogged_reset(s);
                if (r >= 0 && (s->messages != messages || s->bytes != bytes)) {
                        if (ret_error && asprintf(ret_error, "the copy holds %" PRIu64 " message(s) of %" PRIu64,
                                                  s->messages, messages) < 0)
                                *ret_error = NULL;
                        r = -EIO;
                }
                if (r >= 0) {
                        s->broken = false;
                        s->dirty = false;
                        return 0;
                }
                s->kv = kv_close(s->kv);
                copy = TAKE_PTR(s->dir);
        }
        /* Back to where we were: nothing was written since the copy, so nothing is lost. */
        s->dir = TAKE_PTR(old);
        int k = store_reopen(s, NULL);
        if (k < 0)
                log_error_errno(k, "Cannot reopen the message store '%s' either: %m", s->dir);
        return r;
}

/* The stream holding the globally oldest record, and the oldest head seq among all others. */
static StoreStream *store_oldest_stream(Store *s, uint64_t *ret_next_head) {
        StoreStream *oldest = NULL;
        uint64_t next = UINT64_MAX;

        for (size_t i = 0; i < key_map_size(&s->streams); i++) {
                StoreStream *st = key_map_value_at(&s->streams, i);
                /* A lower bound would pick a victim whose first record lies past the next head. */
                (void) stream_resolve_head(s, st);
                if (st->messages == 0)
                        continue;
                if (!oldest || st->head_seq < oldest->head_seq) {
                        if (oldest)
                                next = oldest->head_seq;
                        oldest = st;
                } else if (st->head_seq < next)
                        next = st->head_seq;
        }
        *ret_next_head = next;
        return oldest;
}

/*
 * drop_oldest: deletes the globally oldest records (lowest seq first) until
 * need more bytes fit. Each step takes a run from the oldest stream up to the
 * next stream's head; the final step carries the new record in the same
 * batch, so the common "drop one, add one" is a single atomic write.
 */
static int store_drop_oldest_and_put(Store *s, uint64_t need, const StoreKey *key, const uint8_t *val, size_t vlen,
                                     bool unlogged) {
        for (;;) {
                _cleanup_(kv_batch_freep) KvBatch *batch = NULL;
                _cleanup_(store_cursor_deinit) StoreCursor c = {};
                uint64_t next_head, freed = 0, n = 0;
                int r;

                StoreStream *victim = store_oldest_stream(s, &next_head);
                if (!victim)
                        return -ENOBUFS; /* cannot happen: need <= max_bytes was checked */

                r = kv_batch_new(&batch);
                if (r < 0)
                        return r;
                r = stream_cursor(s, victim, victim->head_seq, &c);
                if (r < 0)
                        return r;

                bool fits = false;
                for (; store_cursor_valid(&c); r = store_cursor_next(&c)) {
                        if (r < 0)
                                return r;
                        fits = s->bytes - freed + need <= s->options.max_bytes;
                        if (fits)
                                break;
                        size_t klen, vlen2;
                        const void *k = store_cursor_key(&c, &klen);
                        (void) store_cursor_value(&c, &vlen2);
                        if (store_cursor_seq(&c) > next_head)
                                break;
                        kv_batch_delete(batch, k, klen);
                        freed += klen + vlen2;
                        n++;
                }
                if (r < 0)
                        return r;
                if (!store_cursor_valid(&c))
                        fits = s->bytes - freed + need <= s->options.max_bytes;

                if (fits)
                        kv_batch_put(batch, key->buf, key->len, val, vlen);
                if (kv_batch_count(batch) == 0) {
                        /* Counters and store disagree: correct them from the store and give up on this one. */
                        stream_set_head_from(victim, &c);
                        return -EIO;
                }
                r = unlogged && fits ? kv_write_unlogged(s->kv, batch) : kv_write(s->kv, batch);
                if (r < 0)
                        return store_write_failed(s, r);
                s->dirty = true;

                store_account_removed(s, victim, n, freed);
                victim->dropped += n;
                stream_set_head_from(victim, &c);
                if (n > 0)
                        log_debug("Store full: dropped %" PRIu64 " oldest message(s) of '%s'", n, victim->identity);
                if (fits)
                        return 0;
        }
}

/* -ENOSPC when appending need bytes would eat into the reserve. */
static int store_check_disk(Store *s, uint64_t need, bool acknowledged) {
        uint64_t now = now_usec();
        struct statvfs v;

        s->written_since_check += need;
        /* Acknowledged records (the ingest log) may use half the reserve: the plugin stopped before it. */
        if (acknowledged && s->disk_low)
                s->disk_checked_usec = 0;
        if (now - s->disk_checked_usec < STORE_DISK_CHECK_USEC && s->written_since_check < STORE_DISK_CHECK_BYTES)
                return s->disk_low ? -ENOSPC : 0;
        s->disk_checked_usec = now;
        s->written_since_check = 0;
        /* Cannot tell: RocksDB will say. */
        if (statvfs(s->dir, &v) < 0)
                return 0;
        uint64_t avail = (uint64_t) v.f_bavail * v.f_frsize;
        s->disk_low = avail < STORE_DISK_RESERVE_BYTES + need;
        if (acknowledged)
                return avail < STORE_DISK_RESERVE_BYTES / 2 + need ? -ENOSPC : 0;
        return s->disk_low ? -ENOSPC : 0;
}

/*
 * See STORE_UNLOGGED_MIN_BYTES, and STORE_ORIGIN_INGEST for why one
 * unlogged record makes the next one so too. Decided once per pass: a pass
 * that switched midway would write its position without the WAL after
 * records with it, and a crash would import those again.
 */
int store_import_begin(Store *s) {
        bool reading = now_usec() - s->last_read_usec < STORE_UNLOGGED_IDLE_USEC;

        if (s->unlogged_lo != 0 && reading) {
                /*
                 * Someone delivers again: back to the WAL, which must wait
                 * until what skipped it is durable. Importing on without the
                 * WAL would hold every new record back for a flush of its own.
                 */
                s->flush_wanted = true;
                return -EAGAIN;
        }
        s->import_unlogged = s->unlogged_lo != 0 || (s->bytes >= STORE_UNLOGGED_MIN_BYTES && !reading);
        return 0;
}

int store_append_from(Store *s, StoreStream *st, const StoreMessage *m, StoreOrigin origin, uint64_t *ret_seq) {
        bool acknowledged = origin != STORE_ORIGIN_NEW;
        _cleanup_(frame_builder_deinit) FrameBuilder b = FRAME_BUILDER_NULL;
        StoreKey key;
        size_t vlen;
        int r;

        r = store_record_encode(m, &b);
        if (r == -EMSGSIZE) {
                st->rejected++;
                return -ENOBUFS;
        }
        if (r < 0)
                return r;
        const uint8_t *val = store_record_value(&b, &vlen);
        store_key_from_prefix(&key, st->prefix.buf, st->prefix.len, s->next_seq);
        uint64_t need = key.len + vlen;

        if (need > s->options.max_bytes) {
                st->rejected++;
                return -ENOBUFS;
        }
        if (s->broken)
                return -EIO;
        r = store_check_disk(s, need, acknowledged);
        if (r < 0)
                return r;
        bool unlogged = origin == STORE_ORIGIN_INGEST && s->import_unlogged;
        /* Already acknowledged (the ingest log): refusing it now would lose it (invariant 1). */
        bool reject_new = s->options.overflow != OVERFLOW_DROP_OLDEST;
        if (s->bytes + need > s->options.max_bytes && !(acknowledged && reject_new)) {
                if (reject_new) {
                        st->rejected++;
                        return -ENOBUFS;
                }
                r = store_drop_oldest_and_put(s, need, &key, val, vlen, unlogged);
        } else {
                r = unlogged ? kv_put_unlogged(s->kv, key.buf, key.len, val, vlen) :
                               kv_put(s->kv, key.buf, key.len, val, vlen);
                if (r < 0)
                        r = store_write_failed(s, r);
                else if (!unlogged)
                        s->dirty = true;
        }
        if (r < 0) {
                if (r == -ENOBUFS)
                        st->rejected++;
                return r;
        }

        uint64_t seq = s->next_seq++;
        if (unlogged) {
                if (s->unlogged_lo == 0)
                        s->unlogged_lo = seq;
                s->unlogged_hi = seq + 1;
        }
        if (st->messages == 0) {
                st->head_seq = seq;
                st->head_time_ms = m->time_ms;
                st->head_stale = false;
        }
        st->tail_seq = seq;
        st->messages++;
        st->bytes += need;
        st->received++;
        s->messages++;
        s->bytes += need;
        if (ret_seq)
                *ret_seq = seq;
        return 0;
}

int store_append(Store *s, StoreStream *st, const StoreMessage *m, uint64_t *ret_seq) {
        return store_append_from(s, st, m, STORE_ORIGIN_NEW, ret_seq);
}

int store_append_acknowledged(Store *s, StoreStream *st, const StoreMessage *m, uint64_t *ret_seq) {
        return store_append_from(s, st, m, STORE_ORIGIN_ACKNOWLEDGED, ret_seq);
}

/* Keys outside the message-key space ('q'): store_open()'s scan and the budget never see them. */
#define STORE_META_TAG 'm'
#define STORE_META_NAME_MAX 128u

static int store_meta_key(const char *name, uint8_t *key, size_t *ret_len) {
        size_t n = strlen(name);
        if (n == 0 || n > STORE_META_NAME_MAX)
                return -EINVAL;
        key[0] = STORE_META_TAG;
        memcpy(key + 1, name, n);
        *ret_len = n + 1;
        return 0;
}

int store_meta_put(Store *s, const char *name, const void *val, size_t len) {
        uint8_t key[STORE_META_NAME_MAX + 1];
        size_t klen;
        int r;

        if (s->broken)
                return -EIO;
        r = store_meta_key(name, key, &klen);
        if (r < 0)
                return r;
        r = kv_put(s->kv, key, klen, val, len);
        if (r < 0)
                return store_write_failed(s, r);
        s->dirty = true;
        return 0;
}

int store_meta_put_imported(Store *s, const char *name, const void *val, size_t len, uint64_t *ret_mark) {
        _cleanup_(kv_batch_freep) KvBatch *batch = NULL;
        uint8_t key[STORE_META_NAME_MAX + 1], mark_key[sizeof(STORE_META_MARK)];
        size_t klen, mark_klen;
        uint64_t mark = s->next_seq;
        int r;

        if (s->unlogged_lo == 0) {
                *ret_mark = 0;
                return store_meta_put(s, name, val, len);
        }
        if (s->broken)
                return -EIO;
        r = store_meta_key(name, key, &klen);
        if (r < 0)
                return r;
        r = store_meta_key(STORE_META_MARK, mark_key, &mark_klen);
        if (r < 0)
                return r;
        r = kv_batch_new(&batch);
        if (r < 0)
                return r;
        /* One batch: a flush that persists the mark persists this position too, and every record before both. */
        kv_batch_put(batch, key, klen, val, len);
        kv_batch_put(batch, mark_key, mark_klen, &mark, sizeof(mark));
        r = kv_write_unlogged(s->kv, batch);
        if (r < 0)
                return store_write_failed(s, r);
        s->written_mark = mark;
        *ret_mark = mark;
        return 0;
}

bool store_mark_durable(const Store *s, uint64_t mark) {
        return s->durable_mark >= mark;
}

int store_unlogged_poll(Store *s, bool idle) {
        uint64_t mark;
        int r, released = 0;

        if (s->unlogged_lo == 0 || s->broken || !s->kv)
                return 0;
        r = store_read_mark(s, true, &mark);
        if (r < 0)
                return r;
        if (mark > s->durable_mark) {
                s->durable_mark = mark;
                if (s->held) {
                        s->held = false;
                        released = 1;
                }
        }
        if (s->durable_mark >= s->unlogged_hi) {
                s->unlogged_lo = s->unlogged_hi = 0;
                s->flush_wanted = false;
                return released;
        }
        /* Only what a mark covers can become durable: the importer writes one after each pass. */
        if ((s->flush_wanted || idle) && s->written_mark > s->durable_mark && kv_flush_start(s->kv) >= 0)
                s->flush_wanted = false;
        return released;
}

uint64_t store_generation(const Store *s) {
        return s->generation;
}

int store_meta_get(Store *s, const char *name, void **ret, size_t *ret_len) {
        uint8_t key[STORE_META_NAME_MAX + 1];
        size_t klen;
        int r;

        if (!s->kv)
                return -EIO;
        r = store_meta_key(name, key, &klen);
        if (r < 0)
                return r;
        return kv_get(s->kv, key, klen, ret, ret_len);
}

int store_meta_delete(Store *s, const char *name) {
        uint8_t key[STORE_META_NAME_MAX + 1];
        size_t klen;
        int r;

        if (s->broken)
                return -EIO;
        r = store_meta_key(name, key, &klen);
        if (r < 0)
                return r;
        r = kv_delete(s->kv, key, klen);
        if (r < 0)
                return store_write_failed(s, r);
        s->dirty = true;
        return 0;
}

int store_read(Store *s, StoreStream *st, uint64_t from_seq, size_t max, StoreRecordFn fn, void *userdata) {
        _cleanup_(store_cursor_deinit) StoreCursor c = {};
        size_t n = 0;
        int r;

        if (!s->kv)
                return -EIO;
        /* Someone delivers: new imports keep the WAL (STORE_UNLOGGED_IDLE_USEC). */
        s->last_read_usec = now_usec();
        if (st->messages == 0 || from_seq > st->tail_seq || max == 0)
                return 0;
        if (from_seq < st->head_seq)
                from_seq = st->head_seq;

        r = stream_cursor(s, st, from_seq, &c);
        for (; r >= 0 && store_cursor_valid(&c) && n < max; r = store_cursor_next(&c)) {
                size_t klen, vlen;
                (void) store_cursor_key(&c, &klen);
                const void *v = store_cursor_value(&c, &vlen);
                StoreRecord rec = { .seq = store_cursor_seq(&c), .size = klen + vlen };

                /* Not durable but in the ingest log: a crash now would import it again, so it must not go yet. */
                if (s->unlogged_lo != 0 && rec.seq >= s->unlogged_lo && rec.seq >= s->durable_mark) {
                        s->held = true;
                        s->flush_wanted = true;
                        break;
                }
                if (store_record_decode(v, vlen, &rec.message) < 0) {
                        /* It can never be delivered; removing it keeps it from blocking the stream. */
                        log_warning("Stored message %" PRIu64 " of '%s' is undecodable, dropping it",
                                    rec.seq, st->identity);
                        r = store_remove(s, st, rec.seq, rec.size, STORE_REMOVE_DROPPED);
                        if (r < 0 && r != -ENOENT)
                                return r;
                        continue;
                }
                n++;
                r = fn(userdata, &rec);
                if (r < 0)
                        return r;
                if (r > 0)
                        break;
        }
        if (r < 0)
                return r;
        return (int) n;
}

int store_remove(Store *s, StoreStream *st, uint64_t seq, size_t size, StoreRemoveReason reason) {
        StoreKey key;
        int r;

        if (st->messages == 0 || seq < st->head_seq || seq > st->tail_seq)
                return -ENOENT;

        if (s->broken)
                return -EIO;
        store_key_from_prefix(&key, st->prefix.buf, st->prefix.len, seq);
        r = kv_delete(s->kv, key.buf, key.len);
        if (r < 0)
                return store_write_failed(s, r);
        s->dirty = true;

        store_account_removed(s, st, 1, size);
        switch (reason) {
        case STORE_REMOVE_DELIVERED:
                st->delivered++;
                break;
        case STORE_REMOVE_EXPIRED:
                st->expired++;
                break;
        default:
                st->dropped++;
                break;
        }

        if (seq == st->head_seq && st->messages > 0) {
                st->head_seq = seq + 1;
                st->head_stale = true;
        }
        return 0;
}

/* Removes expired records from one stream's head; returns how many. */
static int store_expire_stream(Store *s, StoreStream *st, uint64_t cutoff_ms, size_t max) {
        _cleanup_(kv_batch_freep) KvBatch *batch = NULL;
        _cleanup_(store_cursor_deinit) StoreCursor c = {};
        uint64_t freed = 0, n = 0;
        int r;

        r = kv_batch_new(&batch);
        if (r < 0)
                return r;
        r = stream_cursor(s, st, st->head_seq, &c);
        for (; r >= 0 && store_cursor_valid(&c) && n < max; r = store_cursor_next(&c)) {
                size_t klen, vlen;
                const void *k = store_cursor_key(&c, &klen);
                const void *v = store_cursor_value(&c, &vlen);
                if (value_time(v, vlen) >= cutoff_ms)
                        break;
                kv_batch_delete(batch, k, klen);
                freed += klen + vlen;
                n++;
        }
        if (r < 0)
                return r;
        if (n == 0) {
                stream_set_head_from(st, &c);
                return 0;
        }
        r = kv_write(s->kv, batch);
        if (r < 0)
                return store_write_failed(s, r);
        s->dirty = true;
        store_account_removed(s, st, n, freed);
        st->expired += n;
        stream_set_head_from(st, &c);
        return (int) n;
}

int store_expire(Store *s, uint64_t now_ms, uint64_t default_ttl_ms, size_t max_removals) {
        size_t n_streams = key_map_size(&s->streams);
        size_t removed = 0;

        if (s->broken)
                return -EIO;
        for (size_t k = 0; k < n_streams; k++) {
                size_t i = (s->expire_cursor + k) % n_streams;
                StoreStream *st = key_map_value_at(&s->streams, i);
                uint64_t ttl_ms = st->ttl_ms ? st->ttl_ms : default_ttl_ms;
                if (ttl_ms == 0 || now_ms <= ttl_ms)
                        continue;
                uint64_t cutoff_ms = now_ms - ttl_ms;
                if (st->messages == 0 || store_stream_head_time_ms(s, st) >= cutoff_ms)
                        continue;
                int r = store_expire_stream(s, st, cutoff_ms, max_removals - removed);
                if (r < 0)
                        return r;
                removed += (size_t) r;
                if (removed >= max_removals) {
                        s->expire_cursor = i;
                        return 1;
                }
        }
        return 0;
}

void store_compact_some(Store *s) {
        StoreStream *best = NULL;

        if (s->broken)
                return;
        /*
         * Drained: level 0 compacts late (proto/store/kv.c), so the backlog and its
         * tombstones would keep their disk space until more traffic came.
         * They cancel out: this reads them and writes next to nothing.
         */
        if (s->removed_since_compact >= STORE_COMPACT_AFTER_REMOVALS && s->bytes < STORE_COMPACT_ALL_BELOW_BYTES) {
                const uint8_t from = STORE_KEY_TAG, to = STORE_KEY_TAG + 1;
                (void) kv_compact_range(s->kv, &from, 1, &to, 1);
                s->removed_since_compact = 0;
                for (size_t i = 0; i < key_map_size(&s->streams); i++)
                        ((StoreStream *) key_map_value_at(&s->streams, i))->removed_since_compact = 0;
                return;
        }

        for (size_t i = 0; i < key_map_size(&s->streams); i++) {
                StoreStream *st = key_map_value_at(&s->streams, i);
                if (st->removed_since_compact >= STORE_COMPACT_AFTER_REMOVALS &&
                    (!best || st->removed_since_compact > best->removed_since_compact))
                        best = st;
        }
        if (!best)
                return;

        /* Everything below the head is deleted: compacting it drops the tombstones. */
        (void) stream_resolve_head(s, best);
        StoreKey from, to;
        store_key_from_prefix(&from, best->prefix.buf, best->prefix.len, 0);
        store_key_from_prefix(&to, best->prefix.buf, best->prefix.len,
                              best->messages > 0 ? best->head_seq : best->tail_seq + 1);
        (void) kv_compact_range(s->kv, from.buf, from.len, to.buf, to.len);
        best->removed_since_compact = 0;
}

int store_sync(Store *s) {
        int r;

        if (s->broken)
                return -EIO;
        if (!s->dirty)
                return 0;
        r = kv_sync_wal(s->kv);
        if (r < 0)
                return store_write_failed(s, r);
        s->dirty = false;
        return 0;
}

const char *store_dir(const Store *s) {
        return s->dir;
}

uint64_t store_messages(const Store *s) {
        return s->messages;
}

uint64_t store_bytes(const Store *s) {
        return s->bytes;
}

uint64_t store_max_bytes(const Store *s) {
        return s->options.max_bytes;
}

uint64_t store_disk_bytes(Store *s) {
        return s->kv ? kv_disk_bytes(s->kv) : 0;
}

uint64_t store_oldest_time_ms(Store *s) {
        uint64_t oldest = 0;

        for (size_t i = 0; i < key_map_size(&s->streams); i++) {
                StoreStream *st = key_map_value_at(&s->streams, i);
                uint64_t t = store_stream_head_time_ms(s, st);
                if (st->messages > 0 && (oldest == 0 || t < oldest))
                        oldest = t;
        }
        return oldest;
}
