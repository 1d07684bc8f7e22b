/* twin-sync's RocksDB: twin records and the durable queue of reported patches */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/cleanup.h"
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
                _cleanup_free_ char *identity = NULL, *qprefix = NULL;
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

                r = queue_key(identity, 0, &qprefix, &qlen);
                if (r < 0)
                        return r;
                r = kv_iter_new(kv, qprefix, qlen, &q);
                if (r < 0)
                        return r;
                for (; kv_iter_valid(q); kv_iter_next(q)) {
                        uint64_t be;
                        size_t plen;
                        const char *qk = kv_iter_key(q, &klen);
                        (void) kv_iter_value(q, &plen);
                        if (klen != qlen + 8)
                                return -EUCLEAN;
                        memcpy(&be, qk + qlen, 8);
                        /* The record and its queue are written in one batch: a queued patch is always below next_seq. */
                        if (be64toh(be) >= t->next_seq)
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

int twin_store_save(Kv *kv, const Twin *t, const void *patch, size_t patch_len) {
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
        if (patch) {
                r = queue_key(t->identity, t->next_seq - 1, &qkey, &qlen);
                if (r < 0)
                        return r;
                kv_batch_put(b, qkey, qlen, patch, patch_len);
        }
        return kv_write(kv, b);
}

int twin_store_replace(Kv *kv, const Twin *t, uint64_t seq, const void *patch, size_t patch_len) {
        _cleanup_(kv_batch_freep) KvBatch *b = NULL;
        _cleanup_free_ char *rkey = NULL, *qkey = NULL, *val = record_encode(t);
        size_t rlen, qlen;
        int r;

        if (!val)
                return -ENOMEM;
        if (seq == 0 || seq >= t->next_seq)
                return -EINVAL;
        r = record_key(t->identity, &rkey, &rlen);
        if (r < 0)
                return r;
        r = queue_key(t->identity, seq, &qkey, &qlen);
        if (r < 0)
                return r;
        r = kv_batch_new(&b);
        if (r < 0)
                return r;
        kv_batch_put(b, rkey, rlen, val, strlen(val));
        kv_batch_put(b, qkey, qlen, patch, patch_len);
        return kv_write(kv, b);
}

int twin_store_tail(Kv *kv, const Twin *t, uint64_t *ret_seq, void **ret_patch, size_t *ret_len) {
        _cleanup_(kv_iter_freep) KvIter *it = NULL;
        _cleanup_free_ char *prefix = NULL;
        _cleanup_free_ void *copy = NULL;
        size_t plen, klen, vlen;
        uint64_t seq = 0;
        int r;

        r = queue_key(t->identity, 0, &prefix, &plen);
        if (r < 0)
                return r;
        r = kv_iter_new(kv, prefix, plen, &it);
        if (r < 0)
                return r;
        /* Merging keeps the queue to about two entries (one in flight): a scan is cheap. */
        for (; kv_iter_valid(it); kv_iter_next(it)) {
                uint64_t be;
                const char *key = kv_iter_key(it, &klen);
                const void *val = kv_iter_value(it, &vlen);
                if (klen != plen + 8)
                        return -EUCLEAN;
                free(copy);
                copy = malloc(vlen ? vlen : 1);
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, val, vlen);
                memcpy(&be, key + plen, 8);
                seq = be64toh(be);
                *ret_len = vlen;
        }
        r = kv_iter_error(it);
        if (r < 0)
                return r;
        if (!copy)
                return -ENOENT;
        *ret_seq = seq;
        *ret_patch = TAKE_PTR(copy);
        return 0;
}

int twin_store_head(Kv *kv, const Twin *t, uint64_t *ret_seq, void **ret_patch, size_t *ret_len) {
        _cleanup_(kv_iter_freep) KvIter *it = NULL;
        _cleanup_free_ char *prefix = NULL;
        size_t plen, klen, vlen;
        uint64_t be;
        int r;

        r = queue_key(t->identity, 0, &prefix, &plen);
        if (r < 0)
                return r;
        r = kv_iter_new(kv, prefix, plen, &it);
        if (r < 0)
                return r;
        if (!kv_iter_valid(it)) {
                r = kv_iter_error(it);
                return r < 0 ? r : -ENOENT;
        }
        const char *key = kv_iter_key(it, &klen);
        const void *val = kv_iter_value(it, &vlen);
        if (klen != plen + 8)
                return -EUCLEAN;
        void *copy = malloc(vlen ? vlen : 1);
        if (!copy)
                return -ENOMEM;
        memcpy(copy, val, vlen);
        memcpy(&be, key + plen, 8);
        *ret_seq = be64toh(be);
        *ret_patch = copy;
        *ret_len = vlen;
        return 0;
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
        _cleanup_free_ char *prefix = NULL;
        json_auto_t *list = json_array();
        size_t plen, klen, vlen;

        if (!list || queue_key(t->identity, 0, &prefix, &plen) < 0 || kv_iter_new(kv, prefix, plen, &it) < 0)
                return NULL;
        for (; kv_iter_valid(it); kv_iter_next(it)) {
                json_error_t e;
                uint64_t be;
                const char *key = kv_iter_key(it, &klen);
                const void *val = kv_iter_value(it, &vlen);
                if (klen != plen + 8)
                        continue;
                memcpy(&be, key + plen, 8);
                json_t *patch = json_loadb(val, vlen, 0, &e);
                json_t *o = json_pack("{s:I, s:o}", "seq", (json_int_t) be64toh(be), "patch",
                                      patch ? patch : json_string("(unreadable)"));
                if (!o || json_array_append_new(list, o) < 0)
                        return NULL;
        }
        return kv_iter_error(it) < 0 ? NULL : json_incref(list);
}
