/* A small, durable key-value store: the one entry point of RocksDB's C API */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rocksdb/c.h>

#include "proto/store/kv.h"
#include "proto/util/cleanup.h"

/* Level 0: files that start a compaction, slow writes down, stop them. */
#define KV_L0_COMPACTION_FILES 32
#define KV_L0_SLOWDOWN_FILES 48
#define KV_L0_STOP_FILES 64

struct Kv {
        rocksdb_t *db;
        rocksdb_options_t *options;
        rocksdb_writeoptions_t *write_options;
        rocksdb_writeoptions_t *unlogged_options;
        rocksdb_readoptions_t *read_options;
        rocksdb_readoptions_t *persisted_options;
        rocksdb_block_based_table_options_t *table_options;
        rocksdb_cache_t *cache;
};

struct KvBatch {
        rocksdb_writebatch_t *batch;
};

struct KvIter {
        rocksdb_iterator_t *it;
        rocksdb_readoptions_t *read_options;
        char *prefix;
        size_t plen;
        char *upper;
        bool positioned;
};

/* RocksDB reports errors as strings: map the kinds callers branch on. */
static int kv_error(char *err) {
        int r = -EIO;

        if (!err)
                return 0;
        if (strstr(err, "Corruption"))
                r = -EUCLEAN;
        else if (strstr(err, "No space") || strstr(err, "ENOSPC"))
                r = -ENOSPC;
        else if (strstr(err, "lock") && strstr(err, "Resource temporarily unavailable"))
                r = -EBUSY;
        rocksdb_free(err);
        return r;
}

int kv_open(const char *dir, const KvOptions *o, Kv **ret, char **ret_error) {
        char *err = NULL;

        if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
                int r = -errno;
                if (ret_error && asprintf(ret_error, "cannot create '%s': %s", dir, strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }

        Kv *kv = calloc(1, sizeof(*kv));
        if (!kv)
                return -ENOMEM;

        /*
         * Sized for a gateway: a 4 MiB memtable (RocksDB's default is 64 MiB),
         * an 8 MiB block cache, two background jobs, no mmap, few open files.
         */
        kv->options = rocksdb_options_create();
        rocksdb_options_set_create_if_missing(kv->options, 1);
        rocksdb_options_set_paranoid_checks(kv->options, 1);
        rocksdb_options_set_write_buffer_size(kv->options, o && o->write_buffer_bytes ? o->write_buffer_bytes : 4u << 20);
        rocksdb_options_set_max_write_buffer_number(kv->options, 2);
        rocksdb_options_set_target_file_size_base(kv->options, 8u << 20);
        /*
         * A queue: records are written once and deleted soon after, and the
         * streams' keys interleave, so every level-0 file spans the key range
         * and every L0->L1 compaction rewrites all that L1 holds. Compacting
         * late lets a drained backlog's tombstones meet its records and both
         * vanish without being written again (a 100,000-message backlog no
         * longer compacts at all). L0's score also counts its bytes against
         * the level-1 size: raised with it. Costs reads: a seek looks into
         * every level-0 file (hub-store seeks once per window, not per message).
         */
        rocksdb_options_set_max_bytes_for_level_base(kv->options, 512u << 20);
        rocksdb_options_set_level0_file_num_compaction_trigger(kv->options, KV_L0_COMPACTION_FILES);
        rocksdb_options_set_level0_slowdown_writes_trigger(kv->options, KV_L0_SLOWDOWN_FILES);
        rocksdb_options_set_level0_stop_writes_trigger(kv->options, KV_L0_STOP_FILES);
        rocksdb_options_set_max_background_jobs(kv->options, 2);
        /*
         * A table file that is not kept open is opened again, index and all,
         * by the next iterator that needs it: with a backlog of millions, each
         * drain window's seek reopened dozens (hub-store keeps more open).
         */
        rocksdb_options_set_max_open_files(kv->options, o && o->max_open_files > 0 ? o->max_open_files : 64);
        rocksdb_options_set_keep_log_file_num(kv->options, 2);
        /*
         * Only fatal lines in RocksDB's own LOG: Debian's librocksdb 7.8 has
         * assertions on, and a LOG write that hits ENOSPC aborts the process
         * at the next line. Our own logs say what matters.
         */
        rocksdb_options_set_info_log_level(kv->options, 4 /* FATAL */);
        rocksdb_options_set_max_log_file_size(kv->options, 1u << 20);
        rocksdb_options_set_max_total_wal_size(kv->options, 16u << 20);
        rocksdb_options_set_compression(kv->options, rocksdb_lz4_compression);
        kv->cache = rocksdb_cache_create_lru(8u << 20);
        kv->table_options = rocksdb_block_based_options_create();
        rocksdb_block_based_options_set_block_cache(kv->table_options, kv->cache);
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(kv->table_options, 1);
        rocksdb_options_set_block_based_table_factory(kv->options, kv->table_options);

        kv->write_options = rocksdb_writeoptions_create();
        rocksdb_writeoptions_set_sync(kv->write_options, o && o->sync_every_write);
        kv->unlogged_options = rocksdb_writeoptions_create();
        rocksdb_writeoptions_disable_WAL(kv->unlogged_options, 1);
        kv->read_options = rocksdb_readoptions_create();
        kv->persisted_options = rocksdb_readoptions_create();
        rocksdb_readoptions_set_read_tier(kv->persisted_options, 2 /* kPersistedTier */);

        kv->db = rocksdb_open(kv->options, dir, &err);
        if (!kv->db) {
                if (ret_error)
                        *ret_error = err ? strdup(err) : NULL;
                int r = kv_error(err);
                kv_close(kv);
                return r < 0 ? r : -EIO;
        }

        *ret = kv;
        return 0;
}

Kv *kv_close(Kv *kv) {
        if (!kv)
                return NULL;
        if (kv->db)
                rocksdb_close(kv->db);
        if (kv->read_options)
                rocksdb_readoptions_destroy(kv->read_options);
        if (kv->persisted_options)
                rocksdb_readoptions_destroy(kv->persisted_options);
        if (kv->write_options)
                rocksdb_writeoptions_destroy(kv->write_options);
        if (kv->unlogged_options)
                rocksdb_writeoptions_destroy(kv->unlogged_options);
        if (kv->options)
                rocksdb_options_destroy(kv->options);
        if (kv->table_options)
                rocksdb_block_based_options_destroy(kv->table_options);
        if (kv->cache)
                rocksdb_cache_destroy(kv->cache);
        free(kv);
        return NULL;
}

/* RocksDB's error text for *ret_error (when asked for), and its kind. */
static int kv_fail(char *err, char **ret_error) {
        if (ret_error)
                *ret_error = err ? strdup(err) : NULL;
        return kv_error(err);
}

int kv_checkpoint(Kv *kv, const char *dir, char **ret_error) {
        char *err = NULL;

        rocksdb_checkpoint_t *c = rocksdb_checkpoint_object_create(kv->db, &err);
        if (!c)
                return kv_fail(err, ret_error);
        /* log_size_for_flush 0: always flush the memtable first, so the copy stands on SST files alone. */
        rocksdb_checkpoint_create(c, dir, 0, &err);
        rocksdb_checkpoint_object_destroy(c);
        return err ? kv_fail(err, ret_error) : 0;
}

int kv_destroy(const char *dir, char **ret_error) {
        char *err = NULL;

        rocksdb_options_t *o = rocksdb_options_create();
        if (!o)
                return -ENOMEM;
        rocksdb_destroy_db(o, dir, &err);
        rocksdb_options_destroy(o);
        return err ? kv_fail(err, ret_error) : 0;
}

int kv_put(Kv *kv, const void *key, size_t klen, const void *val, size_t vlen) {
        char *err = NULL;

        rocksdb_put(kv->db, kv->write_options, key, klen, val, vlen, &err);
        return kv_error(err);
}

int kv_put_unlogged(Kv *kv, const void *key, size_t klen, const void *val, size_t vlen) {
        char *err = NULL;

        rocksdb_put(kv->db, kv->unlogged_options, key, klen, val, vlen, &err);
        return kv_error(err);
}

static int kv_get_with(Kv *kv, const rocksdb_readoptions_t *o, const void *key, size_t klen, void **ret_val,
                       size_t *ret_vlen) {
        char *err = NULL;
        size_t vlen = 0;

        char *v = rocksdb_get(kv->db, o, key, klen, &vlen, &err);
        if (err)
                return kv_error(err);
        if (!v)
                return -ENOENT;
        /* rocksdb_get's buffer is malloc'ed by RocksDB: copy so callers free() it. */
        void *copy = malloc(vlen ? vlen : 1);
        if (!copy) {
                rocksdb_free(v);
                return -ENOMEM;
        }
        memcpy(copy, v, vlen);
        rocksdb_free(v);
        *ret_val = copy;
        *ret_vlen = vlen;
        return 0;
}

int kv_get(Kv *kv, const void *key, size_t klen, void **ret_val, size_t *ret_vlen) {
        return kv_get_with(kv, kv->read_options, key, klen, ret_val, ret_vlen);
}

/*
 * RocksDB skips the memtables for kPersistedTier once any write skipped the
 * WAL (has_unpersisted_data_, never reset while open): then this reads the
 * table files alone. Before any such write, the memtables hold only logged
 * writes, which a crash keeps as well.
 */
int kv_get_persisted(Kv *kv, const void *key, size_t klen, void **ret_val, size_t *ret_vlen) {
        return kv_get_with(kv, kv->persisted_options, key, klen, ret_val, ret_vlen);
}

int kv_delete(Kv *kv, const void *key, size_t klen) {
        char *err = NULL;

        rocksdb_delete(kv->db, kv->write_options, key, klen, &err);
        return kv_error(err);
}

int kv_batch_new(KvBatch **ret) {
        KvBatch *b = calloc(1, sizeof(*b));

        if (!b)
                return -ENOMEM;
        b->batch = rocksdb_writebatch_create();
        *ret = b;
        return 0;
}

KvBatch *kv_batch_free(KvBatch *b) {
        if (!b)
                return NULL;
        rocksdb_writebatch_destroy(b->batch);
        free(b);
        return NULL;
}

void kv_batch_put(KvBatch *b, const void *key, size_t klen, const void *val, size_t vlen) {
        rocksdb_writebatch_put(b->batch, key, klen, val, vlen);
}

void kv_batch_delete(KvBatch *b, const void *key, size_t klen) {
        rocksdb_writebatch_delete(b->batch, key, klen);
}

void kv_batch_delete_range(KvBatch *b, const void *from, size_t flen, const void *to, size_t tlen) {
        rocksdb_writebatch_delete_range(b->batch, from, flen, to, tlen);
}

size_t kv_batch_count(const KvBatch *b) {
        return (size_t) rocksdb_writebatch_count(b->batch);
}

int kv_write(Kv *kv, KvBatch *b) {
        char *err = NULL;

        rocksdb_write(kv->db, kv->write_options, b->batch, &err);
        return kv_error(err);
}

int kv_write_unlogged(Kv *kv, KvBatch *b) {
        char *err = NULL;

        rocksdb_write(kv->db, kv->unlogged_options, b->batch, &err);
        return kv_error(err);
}

/* The smallest key greater than every key starting with prefix; NULL if none (all 0xff). */
static char *prefix_upper_bound(const char *prefix, size_t plen, size_t *ret_len) {
        size_t n = plen;

        while (n > 0 && (unsigned char) prefix[n - 1] == 0xff)
                n--;
        if (n == 0)
                return NULL;
        char *upper = malloc(n);
        if (!upper)
                return NULL;
        memcpy(upper, prefix, n);
        upper[n - 1] = (char) ((unsigned char) upper[n - 1] + 1);
        *ret_len = n;
        return upper;
}

int kv_iter_new(Kv *kv, const void *prefix, size_t plen, KvIter **ret) {
        _cleanup_(kv_iter_freep) KvIter *it = calloc(1, sizeof(*it));
        size_t ulen = 0;

        if (!it)
                return -ENOMEM;
        it->prefix = malloc(plen ? plen : 1);
        if (!it->prefix)
                return -ENOMEM;
        memcpy(it->prefix, prefix, plen);
        it->plen = plen;

        /* An upper bound lets RocksDB skip tombstones past the prefix instead of scanning them. */
        it->read_options = rocksdb_readoptions_create();
        it->upper = plen ? prefix_upper_bound(prefix, plen, &ulen) : NULL;
        if (it->upper)
                rocksdb_readoptions_set_iterate_upper_bound(it->read_options, it->upper, ulen);
        it->it = rocksdb_create_iterator(kv->db, it->read_options);
        /*
         * Seek lazily: a queue deleted from its head keeps tombstones at the
         * front of the prefix, and a seek to the prefix would step over every
         * one of them. Callers that know where to start kv_iter_seek() there.
         */

        *ret = TAKE_PTR(it);
        return 0;
}

KvIter *kv_iter_free(KvIter *it) {
        if (!it)
                return NULL;
        if (it->it)
                rocksdb_iter_destroy(it->it);
        if (it->read_options)
                rocksdb_readoptions_destroy(it->read_options);
        free(it->upper);
        free(it->prefix);
        free(it);
        return NULL;
}

void kv_iter_seek(KvIter *it, const void *key, size_t klen) {
        rocksdb_iter_seek(it->it, key, klen);
        it->positioned = true;
}

bool kv_iter_valid(KvIter *it) {
        size_t klen;

        if (!it->positioned)
                kv_iter_seek(it, it->prefix, it->plen);

        if (!rocksdb_iter_valid(it->it))
                return false;
        const char *k = rocksdb_iter_key(it->it, &klen);
        return klen >= it->plen && memcmp(k, it->prefix, it->plen) == 0;
}

const void *kv_iter_key(KvIter *it, size_t *ret_len) {
        return rocksdb_iter_key(it->it, ret_len);
}

const void *kv_iter_value(KvIter *it, size_t *ret_len) {
        return rocksdb_iter_value(it->it, ret_len);
}

int kv_iter_error(KvIter *it) {
        char *err = NULL;

        rocksdb_iter_get_error(it->it, &err);
        return kv_error(err);
}

void kv_iter_next(KvIter *it) {
        if (!kv_iter_valid(it))
                return;
        rocksdb_iter_next(it->it);
}

int kv_sync_wal(Kv *kv) {
        char *err = NULL;

        rocksdb_flush_wal(kv->db, 1, &err);
        return kv_error(err);
}

int kv_compact_range(Kv *kv, const void *from, size_t flen, const void *to, size_t tlen) {
        rocksdb_compact_range(kv->db, from, flen, to, tlen);
        return 0;
}

static uint64_t kv_property_u64(Kv *kv, const char *name) {
        uint64_t v = 0;

        if (rocksdb_property_int(kv->db, name, &v) != 0)
                return 0;
        return v;
}

static int kv_flush_with(Kv *kv, bool wait) {
        char *err = NULL;

        rocksdb_flushoptions_t *o = rocksdb_flushoptions_create();
        if (!o)
                return -ENOMEM;
        rocksdb_flushoptions_set_wait(o, wait);
        rocksdb_flush(kv->db, o, &err);
        rocksdb_flushoptions_destroy(o);
        return kv_error(err);
}

int kv_flush_start(Kv *kv) {
        /*
         * FlushOptions.allow_write_stall is false and not settable from C: the
         * flush then waits, in the caller, until it would not stall writes,
         * i.e. until the memtable being flushed is done and level 0 has room.
         */
        if (kv_property_u64(kv, "rocksdb.num-immutable-mem-table") > 0 ||
            kv_property_u64(kv, "rocksdb.num-files-at-level0") + 2 >= KV_L0_SLOWDOWN_FILES)
                return -EBUSY;
        return kv_flush_with(kv, false);
}

int kv_flush(Kv *kv) {
        return kv_flush_with(kv, true);
}

uint64_t kv_disk_bytes(Kv *kv) {
        return kv_property_u64(kv, "rocksdb.total-sst-files-size") +
               kv_property_u64(kv, "rocksdb.cur-size-all-mem-tables");
}
