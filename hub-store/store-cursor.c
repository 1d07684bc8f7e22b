/* Reading a stream from a sequence number without walking its deleted past */
#include <errno.h>
#include <string.h>

#include "hub-store/store-cursor.h"

void store_cursor_init(StoreCursor *c, Kv *kv, const StoreKey *stream_prefix, uint64_t last) {
        *c = (StoreCursor) {
                .kv = kv,
                .prefix = *stream_prefix,
                .last = last,
        };
}

void store_cursor_deinit(StoreCursor *c) {
        c->it = kv_iter_free(c->it);
        c->valid = false;
}

static uint64_t key_seq(const void *key, size_t klen) {
        const uint8_t *p = (const uint8_t *) key + klen - 8;
        uint64_t v = 0;

        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

/* The first key <= last from the iterator's position on. */
static int store_cursor_settle(StoreCursor *c) {
        if (kv_iter_valid(c->it)) {
                size_t klen;
                const void *k = kv_iter_key(c->it, &klen);
                c->valid = key_seq(k, klen) <= c->last;
        } else
                c->valid = false;
        return kv_iter_error(c->it);
}

/*
 * One iterator bounded by the stream's prefix (RocksDB stops at the next
 * stream instead of stepping over its keys) and an explicit seek to from:
 * a seek lands on the first live key >= from without visiting the
 * tombstones below it. A cursor used to open an iterator per 256-seq block
 * instead; with the sequence numbers of many streams interleaved that was
 * an iterator for every few records, each a seek through every level-0
 * file, and it bound the drain of a backlog.
 */
int store_cursor_seek(StoreCursor *c, uint64_t from) {
        StoreKey key;
        int r;

        c->valid = false;
        if (from > c->last)
                return 0;
        if (!c->it) {
                r = kv_iter_new(c->kv, c->prefix.buf, c->prefix.len, &c->it);
                if (r < 0)
                        return r;
        }
        store_key_from_prefix(&key, c->prefix.buf, c->prefix.len, from);
        kv_iter_seek(c->it, key.buf, key.len);
        return store_cursor_settle(c);
}

int store_cursor_next(StoreCursor *c) {
        if (!c->valid)
                return 0;
        kv_iter_next(c->it);
        return store_cursor_settle(c);
}

const void *store_cursor_key(StoreCursor *c, size_t *ret_len) {
        return kv_iter_key(c->it, ret_len);
}

const void *store_cursor_value(StoreCursor *c, size_t *ret_len) {
        return kv_iter_value(c->it, ret_len);
}

uint64_t store_cursor_seq(StoreCursor *c) {
        size_t klen;
        const void *k = kv_iter_key(c->it, &klen);

        return key_seq(k, klen);
}
