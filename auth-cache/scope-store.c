/* The device scope on disk: one RocksDB record per identity */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth-cache/scope-store.h"
#include "auth-cache/x509-check.h"
#include "proto/iothub/iot-identity.h"
#include "proto/util/cleanup.h"

/* 1: flags and keys (SAS only); 2: then the auth kind and two thumbprints. Both are read. */
#define RECORD_VERSION_SAS 1u
#define RECORD_VERSION 2u
#define FLAG_ENABLED 0x01u
#define FLAG_EDGE 0x02u
#define FLAG_MODULE 0x04u
#define FLAGS_KNOWN (FLAG_ENABLED | FLAG_EDGE | FLAG_MODULE)
#define KEY_MAX 1024u

typedef struct Secret {
        uint8_t *buf;
        size_t len;
} Secret;

/* Records hold keys: wipe every copy we make. */
static void secret_wipe(Secret *s) {
        if (s->buf) {
                explicit_bzero(s->buf, s->len);
                free(s->buf);
        }
}

static void put_u16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) (v >> 8);
        p[1] = (uint8_t) v;
}

int scope_record_encode(const Identity *id, uint8_t **ret, size_t *ret_len) {
        const char *keys[4] = { id->primary_key ? id->primary_key : "",
                                id->secondary_key ? id->secondary_key : "",
                                id->primary_thumbprint ? id->primary_thumbprint : "",
                                id->secondary_thumbprint ? id->secondary_thumbprint : "" };
        size_t len = 2 + 1, off;
        uint8_t *buf;

        if (id->auth < 0 || id->auth >= _IDENTITY_AUTH_MAX)
                return -EINVAL;
        for (size_t i = 0; i < 4; i++) {
                if (strlen(keys[i]) > KEY_MAX)
                        return -E2BIG;
                len += 2 + strlen(keys[i]);
        }
        buf = malloc(len);
        if (!buf)
                return -ENOMEM;
        buf[0] = RECORD_VERSION;
        buf[1] = (uint8_t) ((id->enabled ? FLAG_ENABLED : 0) |
                            (id->edge ? FLAG_EDGE : 0) |
                            (id->module_id ? FLAG_MODULE : 0));
        off = 2;
        for (size_t i = 0; i < 4; i++) {
                size_t n = strlen(keys[i]);
                if (i == 2)
                        buf[off++] = (uint8_t) id->auth;
                put_u16(buf + off, (uint16_t) n);
                memcpy(buf + off + 2, keys[i], n);
                off += 2 + n;
        }
        *ret = buf;
        *ret_len = len;
        return 0;
}

static int read_key(const uint8_t *buf, size_t len, size_t *off, char **ret) {
        size_t n;

        if (len - *off < 2)
                return -EUCLEAN;
        n = (size_t) buf[*off] << 8 | buf[*off + 1];
        *off += 2;
        if (n > KEY_MAX || len - *off < n || memchr(buf + *off, 0, n))
                return -EUCLEAN;
        if (n == 0)
                *ret = NULL;
        else {
                *ret = strndup((const char *) buf + *off, n);
                if (!*ret)
                        return -ENOMEM;
        }
        *off += n;
        return 0;
}

/* A thumbprint as x509_thumbprint_normalize() wrote it, or none. */
static int read_thumbprint(const uint8_t *buf, size_t len, size_t *off, char **ret) {
        _cleanup_free_ char *raw = NULL, *norm = NULL;
        int r;

        r = read_key(buf, len, off, &raw);
        if (r < 0)
                return r;
        r = x509_thumbprint_normalize(raw, &norm);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || (raw && strcmp(raw, norm) != 0))
                return -EUCLEAN;
        *ret = TAKE_PTR(raw);
        return 0;
}

static int read_auth(const uint8_t *buf, size_t len, size_t *off, Identity *id) {
        int r;

        if (len - *off < 1 || buf[*off] >= _IDENTITY_AUTH_MAX)
                return -EUCLEAN;
        id->auth = (IdentityAuth) buf[(*off)++];
        r = read_thumbprint(buf, len, off, &id->primary_thumbprint);
        if (r < 0)
                return r;
        return read_thumbprint(buf, len, off, &id->secondary_thumbprint);
}

int scope_record_decode(const char *name, size_t name_len, const void *data, size_t len, Identity **ret) {
        _cleanup_(identity_freep) Identity *id = NULL;
        _cleanup_free_ char *n = NULL, *device = NULL, *module = NULL;
        const uint8_t *buf = data;
        size_t off = 2;
        int r;

        if (memchr(name, 0, name_len))
                return -EUCLEAN;
        n = strndup(name, name_len);
        if (!n)
                return -ENOMEM;
        r = iot_identity_split(n, &device, &module);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EUCLEAN;
        r = identity_new(&id, device, module);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return -EUCLEAN;

        if (len < 2 || (buf[0] != RECORD_VERSION && buf[0] != RECORD_VERSION_SAS) || (buf[1] & ~FLAGS_KNOWN) ||
            !!(buf[1] & FLAG_MODULE) != !!module)
                return -EUCLEAN;
        id->enabled = buf[1] & FLAG_ENABLED;
        id->edge = buf[1] & FLAG_EDGE;
        r = read_key(buf, len, &off, &id->primary_key);
        if (r < 0)
                return r;
        r = read_key(buf, len, &off, &id->secondary_key);
        if (r < 0)
                return r;
        if (buf[0] == RECORD_VERSION) {
                r = read_auth(buf, len, &off, id);
                if (r < 0)
                        return r;
        }
        if (off != len)
                return -EUCLEAN;
        /* What an identity needs to authenticate at all, as scope-page.c admits it. */
        if (id->auth == IDENTITY_AUTH_SAS && !identity_key(id))
                return -EUCLEAN;
        if (id->auth == IDENTITY_AUTH_SELF_SIGNED && !id->primary_thumbprint && !id->secondary_thumbprint)
                return -EUCLEAN;

        *ret = TAKE_PTR(id);
        return 0;
}

static int get_u64(Kv *kv, const char *key, uint64_t *ret) {
        _cleanup_free_ uint8_t *val = NULL;
        size_t len;
        uint64_t v = 0;
        int r;

        r = kv_get(kv, key, strlen(key), (void **) &val, &len);
        if (r < 0)
                return r;
        if (len != 8)
                return -EUCLEAN;
        for (size_t i = 0; i < 8; i++)
                v = v << 8 | val[i];
        *ret = v;
        return 0;
}

int scope_store_load(Kv *kv, Scope **ret, uint64_t *ret_last_sync_ms) {
        _cleanup_(scope_freep) Scope *scope = NULL;
        _cleanup_(kv_iter_freep) KvIter *it = NULL;
        const size_t plen = strlen(SCOPE_KEY_IDENTITY_PREFIX);
        uint64_t last_sync = 0;
        int r;

        r = scope_new(&scope);
        if (r < 0)
                return r;
        r = kv_iter_new(kv, SCOPE_KEY_IDENTITY_PREFIX, plen, &it);
        if (r < 0)
                return r;
        for (; kv_iter_valid(it); kv_iter_next(it)) {
                _cleanup_(identity_freep) Identity *id = NULL;
                size_t klen, vlen;
                const char *key = kv_iter_key(it, &klen);
                const void *val = kv_iter_value(it, &vlen);

                if (klen < plen || memcmp(key, SCOPE_KEY_IDENTITY_PREFIX, plen) != 0)
                        break;
                r = scope_record_decode(key + plen, klen - plen, val, vlen, &id);
                if (r < 0)
                        return r;
                r = scope_add(scope, &id);
                if (r < 0)
                        return r;
        }
        /* A scan cut short by corruption must not pass for a smaller scope. */
        r = kv_iter_error(it);
        if (r < 0)
                return r;
        /* What was stored had been finalized: only sort it (keys are unique already). */
        r = scope_sort(scope);
        if (r < 0)
                return r;

        r = get_u64(kv, SCOPE_KEY_LAST_SYNC, &last_sync);
        if (r < 0 && r != -ENOENT)
                return r;

        *ret = TAKE_PTR(scope);
        *ret_last_sync_ms = last_sync;
        return 0;
}

typedef struct ApplyContext {
        KvBatch *batch;
} ApplyContext;

static int identity_key_name(const Identity *id, char **ret) {
        size_t plen = strlen(SCOPE_KEY_IDENTITY_PREFIX), n = strlen(id->name);
        char *k = malloc(plen + n + 1);
        if (!k)
                return -ENOMEM;
        memcpy(k, SCOPE_KEY_IDENTITY_PREFIX, plen);
        memcpy(k + plen, id->name, n + 1);
        *ret = k;
        return 0;
}

static int apply_one(const Identity *old_id, const Identity *new_id, void *userdata) {
        ApplyContext *c = userdata;
        _cleanup_free_ char *key = NULL;
        _cleanup_(secret_wipe) Secret record = {};
        int r;

        r = identity_key_name(new_id ? new_id : old_id, &key);
        if (r < 0)
                return r;
        if (!new_id) {
                kv_batch_delete(c->batch, key, strlen(key));
                return 0;
        }
        r = scope_record_encode(new_id, &record.buf, &record.len);
        if (r < 0)
                return r;
        kv_batch_put(c->batch, key, strlen(key), record.buf, record.len);
        return 0;
}

int scope_store_apply(Kv *kv, const Scope *old_scope, const Scope *new_scope, uint64_t sync_ms) {
        _cleanup_(kv_batch_freep) KvBatch *batch = NULL;
        uint8_t stamp[8];
        int r;

        r = kv_batch_new(&batch);
        if (r < 0)
                return r;
        r = scope_diff(old_scope, new_scope, apply_one, &(ApplyContext) { .batch = batch });
        if (r < 0)
                return r;
        for (size_t i = 0; i < 8; i++)
                stamp[i] = (uint8_t) (sync_ms >> (56 - 8 * i));
        kv_batch_put(batch, SCOPE_KEY_LAST_SYNC, strlen(SCOPE_KEY_LAST_SYNC), stamp, sizeof(stamp));
        return kv_write(kv, batch);
}
