/* Which identities have a live, authenticated broker connection */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "broker-plugin/presence.h"
#include "proto/util/array.h"
#include "proto/util/cleanup.h"

/*
 * A plain array: a gateway has tens to a few thousand connections, and a
 * scan only happens on connect and disconnect, not per message.
 */
void presence_deinit(Presence *p) {
        for (size_t i = 0; i < p->n; i++)
                free(p->entries[i].identity);
        free(p->entries);
        *p = PRESENCE_NULL;
}

static PresenceEntry *presence_find(const Presence *p, const void *connection) {
        for (size_t i = 0; i < p->n; i++)
                if (p->entries[i].connection == connection)
                        return &p->entries[i];
        return NULL;
}

size_t presence_count(const Presence *p, const char *identity) {
        size_t n = 0;
        for (size_t i = 0; i < p->n; i++)
                if (strcmp(p->entries[i].identity, identity) == 0)
                        n++;
        return n;
}

static void presence_drop(Presence *p, PresenceEntry *e) {
        free(e->identity);
        *e = p->entries[--p->n];
}

int presence_add(Presence *p, const void *connection, const char *identity) {
        _cleanup_free_ char *copy = strdup(identity);
        if (!copy)
                return -ENOMEM;

        /*
         * The broker reuses the memory of freed connections; an entry whose
         * end we never saw would otherwise make a stranger look present.
         */
        PresenceEntry *stale = presence_find(p, connection);
        if (stale)
                presence_drop(p, stale);

        if (ARRAY_RESERVE_ONE(p->entries, p->allocated, p->n) < 0)
                return -ENOMEM;

        size_t before = presence_count(p, identity);
        p->entries[p->n++] = (PresenceEntry){ .connection = connection, .identity = TAKE_PTR(copy) };
        return before == 0;
}

int presence_remove(Presence *p, const void *connection, char **ret_identity) {
        PresenceEntry *e = presence_find(p, connection);
        if (!e)
                return 0;

        _cleanup_free_ char *identity = TAKE_PTR(e->identity);
        *e = p->entries[--p->n];
        if (presence_count(p, identity) > 0)
                return 0;

        *ret_identity = TAKE_PTR(identity);
        return 1;
}

/*
 * Quadratic, but only run after hub-store restarted: a few thousand
 * connections cost a few million string compares, once.
 */
static bool presence_seen_before(const Presence *p, size_t i) {
        for (size_t j = 0; j < i; j++)
                if (strcmp(p->entries[j].identity, p->entries[i].identity) == 0)
                        return true;
        return false;
}

int presence_foreach_identity(const Presence *p, int (*f)(const char *identity, void *userdata), void *userdata) {
        for (size_t i = 0; i < p->n; i++) {
                if (presence_seen_before(p, i))
                        continue;
                int r = f(p->entries[i].identity, userdata);
                if (r < 0)
                        return r;
        }
        return 0;
}
