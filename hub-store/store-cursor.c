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

/* Opens the block for pos and moves to the first key >= pos in it. */
static int cursor_open_block(StoreCursor *c, uint64_t pos) {
        StoreKey key;
        unsigned free_bytes = 0; /* low-order seq bytes the block spans */
        int r;

        if ((pos & 0xff) != 0)
                free_bytes = 1;
        else
                /* Aligned: as many trailing zero bytes as pos has (never all 8: that is the whole stream). */
                while (free_bytes < 7 && ((pos >> (8 * free_bytes)) & 0xff) == 0)
                        free_bytes++;

        store_key_from_prefix(&key, c->prefix.buf, c->prefix.len, pos);
        c->it = kv_iter_free(c->it);
        r = kv_iter_new(c->kv, key.buf, key.len - free_bytes, &c->it);
        if (r < 0)
                return r;
        uint64_t span = free_bytes >= 8 ? UINT64_MAX : (1ull << (8 * free_bytes)) - 1;
        c->block_end = (pos | span);
        if ((pos & span) != 0)
                kv_iter_seek(c->it, key.buf, key.len);
        return 0;
}

/* From the iterator's position or the following blocks: the first key <= last. */
static int cursor_settle(StoreCursor *c) {
        for (;;) {
                if (kv_iter_valid(c->it)) {
                        size_t klen;
                        const void *k = kv_iter_key(c->it, &klen);
                        c->valid = key_seq(k, klen) <= c->last;
                        return 0;
                }
                if (c->block_end >= c->last || c->block_end == UINT64_MAX) {
                        c->valid = false;
                        return 0;
                }
                int r = cursor_open_block(c, c->block_end + 1);
                if (r < 0)
                        return r;
        }
}

int store_cursor_seek(StoreCursor *c, uint64_t from) {
        int r;

        c->valid = false;
        if (from > c->last)
                return 0;
        r = cursor_open_block(c, from);
        if (r < 0)
                return r;
        return cursor_settle(c);
}

int store_cursor_next(StoreCursor *c) {
        if (!c->valid)
                return 0;
        kv_iter_next(c->it);
        return cursor_settle(c);
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
