/* Message-store keys: one ordered queue per endpoint, priority and sender */
#include <errno.h>
#include <string.h>

#include "hub-store/store-key.h"

static void put_u64(uint8_t *p, uint64_t v) {
        for (int i = 7; i >= 0; i--) {
                p[i] = (uint8_t) v;
                v >>= 8;
        }
}

static uint64_t get_u64(const uint8_t *p) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | p[i];
        return v;
}

int store_key_stream_prefix(StoreKey *ret, const char *endpoint, uint8_t priority, const char *identity) {
        size_t elen, ilen;

        if (!endpoint || !identity)
                return -EINVAL;
        elen = strlen(endpoint);
        ilen = strlen(identity);
        if (elen == 0 || elen > STORE_ENDPOINT_MAX || ilen == 0 || ilen > STORE_IDENTITY_MAX)
                return -EINVAL;
        if (priority > STORE_PRIORITY_MAX)
                return -EINVAL;

        uint8_t *p = ret->buf;
        *p++ = STORE_KEY_TAG;
        memcpy(p, endpoint, elen);
        p += elen;
        *p++ = 0;
        *p++ = priority;
        memcpy(p, identity, ilen);
        p += ilen;
        *p++ = 0;
        ret->len = (size_t) (p - ret->buf);
        return 0;
}

void store_key_from_prefix(StoreKey *ret, const uint8_t *prefix, size_t prefix_len, uint64_t seq) {
        if (ret->buf != prefix)
                memmove(ret->buf, prefix, prefix_len);
        put_u64(ret->buf + prefix_len, seq);
        ret->len = prefix_len + 8;
}

int store_key_format(StoreKey *ret, const char *endpoint, uint8_t priority, const char *identity, uint64_t seq) {
        int r = store_key_stream_prefix(ret, endpoint, priority, identity);
        if (r < 0)
                return r;
        store_key_from_prefix(ret, ret->buf, ret->len, seq);
        return 0;
}

int store_key_parse(const void *key, size_t len, StoreKeyParts *ret) {
        const uint8_t *k = key;
        StoreKeyParts parts = {};

        /* tag, 1-byte endpoint, NUL, priority, 1-byte identity, NUL, seq */
        if (len < 1 + 1 + 1 + 1 + 1 + 1 + 8 || len > STORE_KEY_MAX || k[0] != STORE_KEY_TAG)
                return -EBADMSG;

        const uint8_t *end = k + len - 8;
        const uint8_t *e = k + 1;
        const uint8_t *nul = memchr(e, 0, (size_t) (end - e));
        if (!nul || nul == e || (size_t) (nul - e) > STORE_ENDPOINT_MAX)
                return -EBADMSG;
        parts.endpoint = (const char *) e;
        parts.endpoint_len = (size_t) (nul - e);

        if (end - nul < 3) /* priority, identity, NUL */
                return -EBADMSG;
        parts.priority = nul[1];
        if (parts.priority > STORE_PRIORITY_MAX)
                return -EBADMSG;

        const uint8_t *id = nul + 2;
        /* The identity ends exactly where seq starts: no NUL inside. */
        if (end[-1] != 0 || end - 1 == id || memchr(id, 0, (size_t) (end - 1 - id)))
                return -EBADMSG;
        parts.identity = (const char *) id;
        parts.identity_len = (size_t) (end - 1 - id);
        if (parts.identity_len > STORE_IDENTITY_MAX)
                return -EBADMSG;

        parts.prefix_len = len - 8;
        parts.seq = get_u64(end);
        *ret = parts;
        return 0;
}
