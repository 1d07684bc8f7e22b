/* A sorted map from byte-string keys to pointers */
#pragma once

#include <stddef.h>

/*
 * Identities and stream prefixes number in the thousands at most, and the
 * control commands list them in order: a sorted array with binary search is
 * smaller and simpler than a hash table. The key bytes are owned by the
 * value (the caller keeps them alive while the entry exists).
 */
typedef struct KeyMapEntry {
        const void *key;
        size_t klen;
        void *value;
} KeyMapEntry;

typedef struct KeyMap {
        KeyMapEntry *entries;
        size_t n, cap;
} KeyMap;

#define KEY_MAP_NULL ((KeyMap){})

void key_map_deinit(KeyMap *m);

/* The value stored under key, or NULL. */
void *key_map_get(const KeyMap *m, const void *key, size_t klen);
/* -EEXIST if the key is present, -ENOMEM. */
int key_map_put(KeyMap *m, const void *key, size_t klen, void *value);
/* Removes and returns the value, or NULL if absent. */
void *key_map_remove(KeyMap *m, const void *key, size_t klen);

static inline size_t key_map_size(const KeyMap *m) {
        return m->n;
}
/* The i-th value in key order (i < key_map_size()). */
static inline void *key_map_value_at(const KeyMap *m, size_t i) {
        return m->entries[i].value;
}
