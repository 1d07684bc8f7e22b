/* A small, durable key-value store: the one entry point of RocksDB's C API */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/util/cleanup.h"

/*
 * Options are sized for small gateways, not servers (DESIGN.md: RocksDB's
 * defaults assume 64 MB write buffers). Writes go to the WAL before they
 * return; with sync the WAL is fsync'ed too. A write that returned survives
 * kill -9 of the process (the WAL is in the page cache); only power loss can
 * take the unsynced tail, which kv_sync_wal() bounds.
 *
 * The _unlogged writes skip the WAL: they survive nothing until a flush has
 * written them to a table file (which RocksDB syncs), so the caller must
 * hold another copy until then. A flush persists a prefix of the writes in
 * write order, logged and unlogged alike; kv_get_persisted() reads what the
 * table files hold, i.e. what a crash now would leave of unlogged writes.
 */
typedef struct Kv Kv;
typedef struct KvBatch KvBatch;
typedef struct KvIter KvIter;

typedef struct KvOptions {
        bool sync_every_write;
        size_t write_buffer_bytes; /* 0 = 4 MiB */
        int max_open_files;        /* table files kept open; 0 = 64 */
} KvOptions;

/* Creates the folder if missing. -EUCLEAN when the store is corrupt, -EIO otherwise; *ret_error says why. */
int kv_open(const char *dir, const KvOptions *o, Kv **ret, char **ret_error);
Kv *kv_close(Kv *kv);

int kv_put(Kv *kv, const void *key, size_t klen, const void *val, size_t vlen);
/* -ENOENT if absent; *ret_val is malloc'ed. */
int kv_get(Kv *kv, const void *key, size_t klen, void **ret_val, size_t *ret_vlen);
int kv_delete(Kv *kv, const void *key, size_t klen);

int kv_batch_new(KvBatch **ret);
KvBatch *kv_batch_free(KvBatch *b);
void kv_batch_put(KvBatch *b, const void *key, size_t klen, const void *val, size_t vlen);
void kv_batch_delete(KvBatch *b, const void *key, size_t klen);
void kv_batch_delete_range(KvBatch *b, const void *from, size_t flen, const void *to, size_t tlen);
size_t kv_batch_count(const KvBatch *b);
int kv_write(Kv *kv, KvBatch *b);
int kv_put_unlogged(Kv *kv, const void *key, size_t klen, const void *val, size_t vlen);
int kv_write_unlogged(Kv *kv, KvBatch *b);
/* kv_get() of the table files only, skipping the memtables once any unlogged write was made. */
int kv_get_persisted(Kv *kv, const void *key, size_t klen, void **ret_val, size_t *ret_vlen);
/*
 * Starts a flush of the memtables without waiting for it. -EBUSY when one is
 * still running or level 0 is too full to take one without stalling writes
 * (RocksDB would block the caller then).
 */
int kv_flush_start(Kv *kv);
/* Flushes the memtables and waits. */
int kv_flush(Kv *kv);

/* Iterates keys starting with prefix, in byte order: from the first such key, or from where kv_iter_seek() puts it. */
int kv_iter_new(Kv *kv, const void *prefix, size_t plen, KvIter **ret);
KvIter *kv_iter_free(KvIter *it);
void kv_iter_seek(KvIter *it, const void *key, size_t klen);
bool kv_iter_valid(KvIter *it);
const void *kv_iter_key(KvIter *it, size_t *ret_len);
const void *kv_iter_value(KvIter *it, size_t *ret_len);
void kv_iter_next(KvIter *it);
/* Why iteration stopped early: 0 at a clean end, -EUCLEAN corruption, -EIO. Check after the loop. */
int kv_iter_error(KvIter *it);

/*
 * A consistent copy of the open store in dir (which must not exist): hard
 * links where dir is on the same file system, copies elsewhere; RocksDB
 * syncs it before it returns. -EEXIST-like failures come back as -EIO with
 * *ret_error saying why.
 */
int kv_checkpoint(Kv *kv, const char *dir, char **ret_error);
/* Deletes a closed store's files and its folder (rocksdb_destroy_db). */
int kv_destroy(const char *dir, char **ret_error);

/* fsync the WAL (the periodic sync policy). */
int kv_sync_wal(Kv *kv);
/* Reclaims space of deleted keys in [from, to). */
int kv_compact_range(Kv *kv, const void *from, size_t flen, const void *to, size_t tlen);
/* Bytes the store holds: SST files on disk plus memtables (the unflushed WAL tail). */
uint64_t kv_disk_bytes(Kv *kv);

static inline void kv_closep(Kv **k) {
        if (*k)
                kv_close(*k);
}
DEFINE_CLEANUP_FUNC(KvBatch, kv_batch_free);
DEFINE_CLEANUP_FUNC(KvIter, kv_iter_free);
