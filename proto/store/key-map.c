/* A sorted map from byte-string keys to pointers */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/store/key-map.h"
#include "proto/util/array.h"

void key_map_deinit(KeyMap *m) {
        free(m->entries);
        *m = KEY_MAP_NULL;
}

static int key_compare(const void *a, size_t alen, const void *b, size_t blen) {
        int c = memcmp(a, b, alen < blen ? alen : blen);
        if (c != 0)
                return c;
        return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* Index of key, or of the place it would go; *ret_found says which. */
static size_t key_map_find(const KeyMap *m, const void *key, size_t klen, bool *ret_found) {
        size_t lo = 0, hi = m->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = key_compare(m->entries[mid].key, m->entries[mid].klen, key, klen);
                if (c == 0) {
                        *ret_found = true;
                        return mid;
                }
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *ret_found = false;
        return lo;
}

void *key_map_get(const KeyMap *m, const void *key, size_t klen) {
        bool found;
        size_t i = key_map_find(m, key, klen, &found);

        return found ? m->entries[i].value : NULL;
}

int key_map_put(KeyMap *m, const void *key, size_t klen, void *value) {
        bool found;
        size_t i = key_map_find(m, key, klen, &found);

        if (found)
                return -EEXIST;
        if (ARRAY_RESERVE_ONE(m->entries, m->cap, m->n) < 0)
                return -ENOMEM;
        memmove(m->entries + i + 1, m->entries + i, (m->n - i) * sizeof(*m->entries));
        m->entries[i] = (KeyMapEntry) { .key = key, .klen = klen, .value = value };
        m->n++;
        return 0;
}

void *key_map_remove(KeyMap *m, const void *key, size_t klen) {
        bool found;
        size_t i = key_map_find(m, key, klen, &found);

        if (!found)
                return NULL;
        void *value = m->entries[i].value;
        memmove(m->entries + i, m->entries + i + 1, (m->n - i - 1) * sizeof(*m->entries));
        m->n--;
        return value;
}
