/* twin-sync's RocksDB: twin records and the durable queue of reported patches */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/util/cleanup.h"
#include "twin-sync/twin-store.h"

#define RECORD_PREFIX "t/"
#define QUEUE_PREFIX "q/"

static int record_key(const char *identity, char **ret, size_t *ret_len) {
        size_t n = strlen(identity);
        char *k = malloc(2 + n);

        if (!k)
                return -ENOMEM;
        memcpy(k, RECORD_PREFIX, 2);
        memcpy(k + 2, identity, n);
        *ret = k;
        *ret_len = 2 + n;
        return 0;
}

/* "q/{identity}\0" and, with seq != 0, the 8-byte sequence after it. */
static int queue_key(const char *identity, uint64_t seq, char **ret, size_t *ret_len) {
        size_t n = strlen(identity), len = 2 + n + 1 + (seq ? 8 : 0);
        char *k = malloc(len);

        if (!k)
                return -ENOMEM;
        memcpy(k, QUEUE_PREFIX, 2);
        memcpy(k + 2, identity, n);
        k[2 + n] = '\0';
        if (seq) {
                uint64_t be = htobe64(seq);
                memcpy(k + 3 + n, &be, 8);
        }
        *ret = k;
        *ret_len = len;
        return 0;
}

/* An iterator over identity's queued patches, oldest first; each key is the *ret_plen bytes of prefix and a seq. */
static int queue_iter(Kv *kv, const char *identity, KvIter **ret, size_t *ret_plen) {
        _cleanup_free_ char *prefix = NULL;
        int r;

        r = queue_key(identity, 0, &prefix, ret_plen);
        if (r < 0)
                return r;
        return kv_iter_new(kv, prefix, *ret_plen, ret);
}

/* The seq of the queued patch at it; -EUCLEAN for a key that is not the prefix and 8 bytes. */
static int queue_iter_seq(KvIter *it, size_t plen, uint64_t *ret) {
        size_t klen;
        const char *key = kv_iter_key(it, &klen);
        uint64_t be;

        if (klen != plen + 8)
                return -EUCLEAN;
        memcpy(&be, key + plen, 8);
        *ret = be64toh(be);
        return 0;
}

/* The queued patch at it, copied, with its seq. */
static int queue_iter_take(KvIter *it, size_t plen, uint64_t *ret_seq, void **ret_patch, size_t *ret_len) {
        size_t vlen;
        const void *val = kv_iter_value(it, &vlen);
        int r;

        r = queue_iter_seq(it, plen, ret_seq);
        if (r < 0)
                return r;
        void *copy = malloc(vlen ? vlen : 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, val, vlen);
        *ret_patch = copy;
        *ret_len = vlen;
        return 0;
}

int twin_store_record_decode(Twin *t, const void *val, size_t len) {
        json_error_t e;
        json_auto_t *o = json_loadb(val, len, JSON_REJECT_DUPLICATES, &e);
        json_t *desired, *reported, *seen;
        json_int_t dv, rv, sv, seq;

        if (!o || json_unpack_ex(o, &e, JSON_STRICT, "{s:o, s:I, s:o, s:I, s:o, s:I, s:I}", "desired", &desired,
                                 "dv", &dv, "reported", &reported, "rv", &rv, "seen", &seen, "sv", &sv, "seq",
                                 &seq) < 0)
                return -EUCLEAN;
        if (!json_is_object(desired) || !json_is_object(reported) || !json_is_object(seen) || dv < 0 || rv < 0 ||
            sv < 0 || seq < 1)
                return -EUCLEAN;
        json_decref(t->desired);
        json_decref(t->reported);
        json_decref(t->seen);
        t->desired = json_incref(desired);
        t->reported = json_incref(reported);
        t->seen = json_incref(seen);
        t->desired_version = dv;
        t->reported_version = rv;
        t->seen_version = sv;
        t->next_seq = (uint64_t) seq;
        return 0;
}

int twin_store_load(Kv *kv, int (*load)(Twin **t, void *userdata), void *userdata) {
        _cleanup_(kv_iter_freep) KvIter *it = NULL;
        int r;

        r = kv_iter_new(kv, RECORD_PREFIX, 2, &it);
        if (r < 0)
                return r;
        for (; kv_iter_valid(it); kv_iter_next(it)) {
                _cleanup_(twin_freep) Twin *t = NULL;
                _cleanup_free_ char *identity = NULL;
                _cleanup_(kv_iter_freep) KvIter *q = NULL;
                size_t klen, vlen, qlen;
                const char *key = kv_iter_key(it, &klen);
                const void *val = kv_iter_value(it, &vlen);

                identity = strndup(key + 2, klen - 2);
                if (!identity)
                        return -ENOMEM;
                if (strlen(identity) != klen - 2 || klen == 2)
                        return -EUCLEAN;
                r = twin_new(&t, identity);
                if (r < 0)
                        return r;
                r = twin_store_record_decode(t, val, vlen);
                if (r < 0)
                        return r;

                r = queue_iter(kv, identity, &q, &qlen);
                if (r < 0)
                        return r;
                for (; kv_iter_valid(q); kv_iter_next(q)) {
                        uint64_t seq;
                        size_t plen;
                        (void) kv_iter_value(q, &plen);
                        r = queue_iter_seq(q, qlen, &seq);
                        if (r < 0)
                                return r;
                        /* The record and its queue are written in one batch: a queued patch is always below next_seq. */
                        if (seq >= t->next_seq)
                                return -EUCLEAN;
                        t->n_pending++;
                        t->pending_bytes += plen;
                }
                r = kv_iter_error(q);
                if (r < 0)
                        return r;

                r = load(&t, userdata);
                if (r < 0)
                        return r;
        }
        return kv_iter_error(it);
}

static char *record_encode(const Twin *t) {
        json_auto_t *o = json_pack("{s:O, s:I, s:O, s:I, s:O, s:I, s:I}", "desired", t->desired, "dv",
                                   (json_int_t) t->desired_version, "reported", t->reported, "rv",
                                   (json_int_t) t->reported_version, "seen", t->seen, "sv",
                                   (json_int_t) t->seen_version, "seq", (json_int_t) t->next_seq);
        return o ? json_dumps(o, JSON_COMPACT) : NULL;
}

/* t's record and, unless seq is 0, patch queued as seq: one batch, so the record and its queue always agree. */
static int record_write(Kv *kv, const Twin *t, uint64_t seq, const void *patch, size_t patch_len) {
        _cleanup_(kv_batch_freep) KvBatch *b = NULL;
        _cleanup_free_ char *rkey = NULL, *qkey = NULL, *val = record_encode(t);
        size_t rlen, qlen;
        int r;

        if (!val)
                return -ENOMEM;
        r = record_key(t->identity, &rkey, &rlen);
        if (r < 0)
                return r;
        r = kv_batch_new(&b);
        if (r < 0)
                return r;
        kv_batch_put(b, rkey, rlen, val, strlen(val));
        if (seq != 0) {
                r = queue_key(t->identity, seq, &qkey, &qlen);
                if (r < 0)
                        return r;
                kv_batch_put(b, qkey, qlen, patch, patch_len);
        }
        return kv_write(kv, b);
}

int twin_store_save(Kv *kv, const Twin *t, const void *patch, size_t patch_len) {
        return record_write(kv, t, patch ? t->next_seq - 1 : 0, patch, patch_len);
}

int twin_store_replace(Kv *kv, const Twin *t, uint64_t seq, const void *patch, size_t patch_len) {
        if (seq == 0 || seq >= t->next_seq)
                return -EINVAL;
        return record_write(kv, t, seq, patch, patch_len);
}

int twin_store_tail(Kv *kv, const Twin *t, uint64_t *ret_seq, void **ret_patch, size_t *ret_len) {
        _cleanup_(kv_iter_freep) KvIter *it = NULL;
        _cleanup_free_ void *copy = NULL;
        size_t plen, len = 0;
        uint64_t seq = 0;
        int r;

        r = queue_iter(kv, t->identity, &it, &plen);
        if (r < 0)
                return r;
        /* Merging keeps the queue to about two entries (one in flight): a scan is cheap. */
        for (; kv_iter_valid(it); kv_iter_next(it)) {
                free(copy);
                copy = NULL;
                r = queue_iter_take(it, plen, &seq, &copy, &len);
                if (r < 0)
                        return r;
        }
        r = kv_iter_error(it);
        if (r < 0)
                return r;
        if (!copy)
                return -ENOENT;
        *ret_seq = seq;
        *ret_patch = TAKE_PTR(copy);
        *ret_len = len;
        return 0;
}

int twin_store_head(Kv *kv, const Twin *t, uint64_t *ret_seq, void **ret_patch, size_t *ret_len) {
        _cleanup_(kv_iter_freep) KvIter *it = NULL;
        size_t plen;
        int r;

        r = queue_iter(kv, t->identity, &it, &plen);
        if (r < 0)
                return r;
        if (!kv_iter_valid(it)) {
                r = kv_iter_error(it);
                return r < 0 ? r : -ENOENT;
        }
        return queue_iter_take(it, plen, ret_seq, ret_patch, ret_len);
}

int twin_store_ack(Kv *kv, const Twin *t, uint64_t seq) {
        _cleanup_free_ char *key = NULL;
        size_t len;
        int r;

        r = queue_key(t->identity, seq, &key, &len);
        if (r < 0)
                return r;
        return kv_delete(kv, key, len);
}

json_t *twin_store_pending(Kv *kv, const Twin *t) {
        _cleanup_(kv_iter_freep) KvIter *it = NULL;
        json_auto_t *list = json_array();
        size_t plen, vlen;

        if (!list || queue_iter(kv, t->identity, &it, &plen) < 0)
                return NULL;
        for (; kv_iter_valid(it); kv_iter_next(it)) {
                json_error_t e;
                uint64_t seq;
                const void *val = kv_iter_value(it, &vlen);
                if (queue_iter_seq(it, plen, &seq) < 0)
                        continue;
                json_t *patch = json_loadb(val, vlen, 0, &e);
                json_t *o = json_pack("{s:I, s:o}", "seq", (json_int_t) seq, "patch",
                                      patch ? patch : json_string("(unreadable)"));
                if (!o || json_array_append_new(list, o) < 0)
                        return NULL;
        }
        return kv_iter_error(it) < 0 ? NULL : json_incref(list);
}
