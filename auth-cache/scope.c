/* The device scope in memory: identities, their keys and state */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth-cache/scope.h"
#include "proto/iothub/iot-identity.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

static void free_secret(char *s) {
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

static const char *const auth_names[_IDENTITY_AUTH_MAX] = {
        [IDENTITY_AUTH_SAS] = "sas",
        [IDENTITY_AUTH_SELF_SIGNED] = "selfSigned",
        [IDENTITY_AUTH_CA] = "certificateAuthority",
};

const char *identity_auth_to_string(IdentityAuth a) {
        return a >= 0 && a < _IDENTITY_AUTH_MAX ? auth_names[a] : NULL;
}

IdentityAuth identity_auth_from_string(const char *s) {
        for (size_t i = 0; i < _IDENTITY_AUTH_MAX; i++)
                if (s && strcmp(s, auth_names[i]) == 0)
                        return (IdentityAuth) i;
        return _IDENTITY_AUTH_INVALID;
}

int identity_new(Identity **ret, const char *device_id, const char *module_id) {
        _cleanup_(identity_freep) Identity *id = NULL;
        int n;

        if (!iot_id_is_valid(device_id) || (module_id && !iot_id_is_valid(module_id)))
                return -EINVAL;

        id = calloc(1, sizeof(*id));
        if (!id)
                return -ENOMEM;
        id->device_id = strdup(device_id);
        if (!id->device_id)
                return -ENOMEM;
        if (module_id) {
                id->module_id = strdup(module_id);
                if (!id->module_id)
                        return -ENOMEM;
                n = asprintf(&id->name, "%s/%s", device_id, module_id);
        } else
                n = asprintf(&id->name, "%s", device_id);
        if (n < 0) {
                id->name = NULL;
                return -ENOMEM;
        }
        id->enabled = true;

        *ret = TAKE_PTR(id);
        return 0;
}

Identity *identity_free(Identity *id) {
        if (!id)
                return NULL;
        free(id->secondary_thumbprint);
        free(id->primary_thumbprint);
        free_secret(id->secondary_key);
        free_secret(id->primary_key);
        free(id->module_id);
        free(id->device_id);
        free(id->name);
        free(id);
        return NULL;
}

const char *identity_key(const Identity *id) {
        if (id->primary_key && id->primary_key[0])
                return id->primary_key;
        if (id->secondary_key && id->secondary_key[0])
                return id->secondary_key;
        return NULL;
}

static bool streq_null(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

static bool thumbprint_kept(const char *t, const Identity *new_id) {
        return !t || streq_null(t, new_id->primary_thumbprint) || streq_null(t, new_id->secondary_thumbprint);
}

bool identity_certificate_revoked(const Identity *old_id, const Identity *new_id) {
        if (old_id->auth == IDENTITY_AUTH_SAS)
                return false;
        if (old_id->auth != new_id->auth)
                return true;
        return !thumbprint_kept(old_id->primary_thumbprint, new_id) ||
               !thumbprint_kept(old_id->secondary_thumbprint, new_id);
}

bool identity_equal(const Identity *a, const Identity *b) {
        return a->enabled == b->enabled &&
               a->edge == b->edge &&
               streq_null(a->primary_key, b->primary_key) &&
               streq_null(a->secondary_key, b->secondary_key) &&
               a->auth == b->auth &&
               streq_null(a->primary_thumbprint, b->primary_thumbprint) &&
               streq_null(a->secondary_thumbprint, b->secondary_thumbprint);
}

static bool key_kept(const char *key, const Identity *b) {
        return !key || streq_null(key, b->primary_key) || streq_null(key, b->secondary_key);
}

bool identity_keys_revoked(const Identity *a, const Identity *b) {
        /* A swap of primary and secondary revokes nothing: tokens of both still verify. */
        return !key_kept(a->primary_key, b) || !key_kept(a->secondary_key, b);
}

int scope_new(Scope **ret) {
        Scope *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->sorted = true;
        *ret = s;
        return 0;
}

Scope *scope_free(Scope *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_items; i++)
                identity_free(s->items[i]);
        free(s->items);
        free(s);
        return NULL;
}

static int scope_reserve(Scope *s, size_t extra) {
        if (s->n_items + extra <= s->n_allocated)
                return 0;
        size_t n = s->n_allocated ? s->n_allocated : 16;
        while (n < s->n_items + extra)
                n *= 2;
        Identity **items = reallocarray(s->items, n, sizeof(*items));
        if (!items)
                return -ENOMEM;
        s->items = items;
        s->n_allocated = n;
        return 0;
}

int scope_add(Scope *s, Identity **id) {
        int r = scope_reserve(s, 1);
        if (r < 0)
                return r;
        s->items[s->n_items++] = TAKE_PTR(*id);
        s->sorted = false;
        return 0;
}

int scope_take_all(Scope *dst, Scope *src) {
        int r = scope_reserve(dst, src->n_items);
        if (r < 0)
                return r;
        if (src->n_items > 0) {
                memcpy(dst->items + dst->n_items, src->items, src->n_items * sizeof(*src->items));
                dst->n_items += src->n_items;
                dst->sorted = false;
        }
        src->n_items = 0;
        src->sorted = true;
        return 0;
}

/* Sort by name, then by insertion order so that "the first added wins" is well defined. */
typedef struct SortEntry {
        Identity *id;
        size_t order;
} SortEntry;

static int sort_entry_compare(const void *a, const void *b) {
        const SortEntry *x = a, *y = b;
        int c = strcmp(x->id->name, y->id->name);
        if (c != 0)
                return c;
        return x->order < y->order ? -1 : x->order > y->order;
}

static int identity_compare(const void *a, const void *b) {
        const Identity *const *x = a, *const *y = b;
        return strcmp((*x)->name, (*y)->name);
}

static int name_compare(const void *key, const void *item) {
        const Identity *const *id = item;
        return strcmp(key, (*id)->name);
}

int scope_sort(Scope *s) {
        _cleanup_free_ SortEntry *entries = NULL;
        size_t n = 0;
        int dropped = 0;

        if (s->n_items == 0) {
                s->sorted = true;
                return 0;
        }

        entries = calloc(s->n_items, sizeof(*entries));
        if (!entries)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_items; i++)
                entries[i] = (SortEntry) { .id = s->items[i], .order = i };
        qsort(entries, s->n_items, sizeof(*entries), sort_entry_compare);

        for (size_t i = 0; i < s->n_items; i++) {
                if (n > 0 && strcmp(s->items[n - 1]->name, entries[i].id->name) == 0) {
                        log_warning("Identity '%s' listed twice in the device scope, keeping the first",
                                    entries[i].id->name);
                        identity_free(entries[i].id);
                        dropped++;
                        continue;
                }
                s->items[n++] = entries[i].id;
        }
        s->n_items = n;
        s->sorted = true;
        return dropped;
}

int scope_finalize(Scope *s, const char *edge_device_id) {
        size_t n;
        int dropped;

        dropped = scope_sort(s);
        if (dropped < 0 || s->n_items == 0)
                return dropped;

        /*
         * A module belongs to its device: without the device in scope it cannot
         * be trusted (IoT Hub disables a device's modules along with it). The
         * edge device's own modules stay even if the cloud did not list the
         * edge device itself. Lookups need the whole sorted array, so mark
         * first and compact afterwards.
         */
        _cleanup_free_ bool *drop = calloc(s->n_items, sizeof(bool));
        if (!drop)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_items; i++) {
                Identity *id = s->items[i];
                if (!id->module_id)
                        continue;
                const Identity *device = scope_find(s, id->device_id);
                if (!device && !streq_null(id->device_id, edge_device_id)) {
                        log_warning("Module '%s' has no device in the device scope, skipping", id->name);
                        drop[i] = true;
                } else if (device && !device->enabled)
                        id->enabled = false;
        }
        n = 0;
        for (size_t i = 0; i < s->n_items; i++) {
                if (drop[i]) {
                        identity_free(s->items[i]);
                        dropped++;
                } else
                        s->items[n++] = s->items[i];
        }
        s->n_items = n;

        return dropped;
}

const Identity *scope_find(const Scope *s, const char *name) {
        if (!s || !name || s->n_items == 0)
                return NULL;
        if (!s->sorted) {
                /* A lookup before scope_finalize() is a bug; stay correct anyway. */
                for (size_t i = 0; i < s->n_items; i++)
                        if (strcmp(s->items[i]->name, name) == 0)
                                return s->items[i];
                return NULL;
        }
        Identity **found = bsearch(name, s->items, s->n_items, sizeof(*s->items), name_compare);
        return found ? *found : NULL;
}

int scope_diff(const Scope *old_scope, const Scope *new_scope, ScopeDiffFunc changed, void *userdata) {
        size_t i = 0, j = 0;
        size_t n_old = old_scope ? old_scope->n_items : 0, n_new = new_scope ? new_scope->n_items : 0;
        int r;

        while (i < n_old || j < n_new) {
                const Identity *a = i < n_old ? old_scope->items[i] : NULL;
                const Identity *b = j < n_new ? new_scope->items[j] : NULL;
                int c = !a ? 1 : !b ? -1 : identity_compare(&a, &b);

                if (c < 0) {
                        r = changed(a, NULL, userdata);
                        i++;
                } else if (c > 0) {
                        r = changed(NULL, b, userdata);
                        j++;
                } else {
                        r = identity_equal(a, b) ? 0 : changed(a, b, userdata);
                        i++;
                        j++;
                }
                if (r != 0)
                        return r;
        }
        return 0;
}
