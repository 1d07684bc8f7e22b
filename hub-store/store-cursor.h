/* Reading a stream from a sequence number without walking its deleted past */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub-store/store-key.h"
#include "proto/store/kv.h"

/*
 * A queue in an LSM tree leaves a tombstone for every delivered message,
 * all of them below the stream's head until compaction drops them. An
 * iterator that starts at the stream prefix steps over each of them:
 * draining a backlog becomes quadratic (measured: 3,600 msg/s falling to
 * 150 msg/s within 20,000 messages). So a cursor seeks straight to the
 * sequence number it wants, in an iterator bounded by the stream's prefix.
 */
typedef struct StoreCursor {
        Kv *kv;
        StoreKey prefix;     /* the stream's */
        uint64_t last;       /* no record beyond this seq (the stream's tail) */
        KvIter *it;
        bool valid;
} StoreCursor;

void store_cursor_init(StoreCursor *c, Kv *kv, const StoreKey *stream_prefix, uint64_t last);
void store_cursor_deinit(StoreCursor *c);

/* Positions at the first record with seq >= from (and <= last). */
int store_cursor_seek(StoreCursor *c, uint64_t from);
int store_cursor_next(StoreCursor *c);
static inline bool store_cursor_valid(const StoreCursor *c) {
        return c->valid;
}
const void *store_cursor_key(StoreCursor *c, size_t *ret_len);
const void *store_cursor_value(StoreCursor *c, size_t *ret_len);
uint64_t store_cursor_seq(StoreCursor *c);
