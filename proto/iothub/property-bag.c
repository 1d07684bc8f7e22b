/* IoT Hub property bags: the "k=v&k2=v2" end of a telemetry topic */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/property-bag.h"
#include "proto/util/cleanup.h"
#include "proto/util/url.h"

void property_bag_deinit(PropertyBag *b) {
        if (!b)
                return;
        for (size_t i = 0; i < b->n && i < PROPERTY_BAG_ENTRIES_MAX; i++) {
                free(b->entries[i].key);
                free(b->entries[i].value);
        }
        b->n = 0;
}

int property_bag_parse(const char *s, size_t len, PropertyBag *ret) {
        /* Built aside so that *ret is untouched on failure. */
        _cleanup_(property_bag_deinit) PropertyBag bag = {};

        if ((!s && len > 0) || !ret)
                return -EINVAL;
        if (len > PROPERTY_BAG_MAX)
                return -E2BIG;

        for (size_t start = 0; start < len;) {
                const char *amp = memchr(s + start, '&', len - start);
                size_t end = amp ? (size_t) (amp - s) : len;
                const char *f = s + start;
                size_t flen = end - start;
                start = end + 1;

                /* "a=1&&b=2" or a trailing '&': nothing to keep. */
                if (flen == 0)
                        continue;
                if (bag.n == PROPERTY_BAG_ENTRIES_MAX)
                        return -E2BIG;

                const char *eq = memchr(f, '=', flen);
                size_t klen = eq ? (size_t) (eq - f) : flen;
                if (klen == 0)
                        return -EINVAL;

                _cleanup_free_ char *key = NULL, *value = NULL;
                int r = url_decode(f, klen, &key);
                if (r < 0)
                        return r;
                r = eq ? url_decode(eq + 1, flen - klen - 1, &value) : url_decode("", 0, &value);
                if (r < 0)
                        return r;
                bag.entries[bag.n++] = (Property){ .key = TAKE_PTR(key), .value = TAKE_PTR(value) };
        }

        *ret = bag;
        bag.n = 0;
        return 0;
}

const char *property_bag_get(const PropertyBag *b, const char *key) {
        if (!b || !key)
                return NULL;
        for (size_t i = 0; i < b->n; i++)
                if (strcmp(b->entries[i].key, key) == 0)
                        return b->entries[i].value;
        return NULL;
}

int property_bag_set(PropertyBag *b, const char *key, const char *value) {
        _cleanup_free_ char *v = strdup(value);
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < b->n; i++)
                if (strcmp(b->entries[i].key, key) == 0) {
                        free(b->entries[i].value);
                        b->entries[i].value = TAKE_PTR(v);
                        return 0;
                }
        if (b->n >= PROPERTY_BAG_ENTRIES_MAX)
                return -E2BIG;
        _cleanup_free_ char *k = strdup(key);
        if (!k)
                return -ENOMEM;
        b->entries[b->n++] = (Property){ .key = TAKE_PTR(k), .value = TAKE_PTR(v) };
        return 0;
}

void property_bag_remove(PropertyBag *b, const char *key) {
        for (size_t i = 0; i < b->n; i++)
                if (strcmp(b->entries[i].key, key) == 0) {
                        free(b->entries[i].key);
                        free(b->entries[i].value);
                        memmove(b->entries + i, b->entries + i + 1, (b->n - i - 1) * sizeof(*b->entries));
                        b->n--;
                        return;
                }
}

int property_bag_format(const PropertyBag *b, char **ret) {
        if (!b || !ret || b->n > PROPERTY_BAG_ENTRIES_MAX)
                return -EINVAL;

        size_t size = 1;
        for (size_t i = 0; i < b->n; i++) {
                if (!b->entries[i].key || !*b->entries[i].key || !b->entries[i].value)
                        return -EINVAL;
                size += 3 * (strlen(b->entries[i].key) + strlen(b->entries[i].value)) + 2;
        }

        _cleanup_free_ char *buf = malloc(size);
        if (!buf)
                return -ENOMEM;

        /* Canonical: every key gets "=", both sides encodeURIComponent'ed ("$" as %24, as IoT Hub sends it). */
        char *p = buf;
        for (size_t i = 0; i < b->n; i++) {
                _cleanup_free_ char *k = NULL, *v = NULL;
                int r = url_encode(b->entries[i].key, strlen(b->entries[i].key), &k);
                if (r < 0)
                        return r;
                r = url_encode(b->entries[i].value, strlen(b->entries[i].value), &v);
                if (r < 0)
                        return r;
                if (i > 0)
                        *p++ = '&';
                p = stpcpy(p, k);
                *p++ = '=';
                p = stpcpy(p, v);
        }
        *p = 0;

        *ret = TAKE_PTR(buf);
        return 0;
}
