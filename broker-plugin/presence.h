/* Which identities have a live, authenticated broker connection */
#pragma once

#include <stddef.h>

/*
 * Keyed by the broker's connection object, not by identity, because
 * mosquitto 2.0.11 can report one connection's end twice and the old and
 * new connection of an identity overlap:
 *  - a new CONNECT with a client id in use is authenticated first, then
 *    the old connection is closed (src/handle_connect.c
 *    connect__on_authorised(): mosq_cs_duplicate, do_disconnect());
 *  - that also happens to an old persistent session whose socket had
 *    already gone, so its MOSQ_EVT_DISCONNECT fires a second time;
 *  - a refused CONNECT fires MOSQ_EVT_DISCONNECT too (with no client id).
 * Only the first end of a connection we admitted counts, and an identity
 * is gone when its last admitted connection is.
 */
typedef struct PresenceEntry {
        const void *connection;
        char *identity;
} PresenceEntry;

typedef struct Presence {
        PresenceEntry *entries;
        size_t n;
        size_t allocated;
} Presence;

#define PRESENCE_NULL ((Presence){})

void presence_deinit(Presence *p);

/*
 * Records an admitted connection. 1 if it is the identity's only live one
 * (report it connected), 0 if the identity already had one, -ENOMEM.
 */
int presence_add(Presence *p, const void *connection, const char *identity);

/*
 * Forgets a connection. 1 with *ret_identity (to free) if it was the
 * identity's last one (report it disconnected); 0 if the connection was
 * unknown or others of the identity remain.
 */
int presence_remove(Presence *p, const void *connection, char **ret_identity);

/* Live connections of identity. */
size_t presence_count(const Presence *p, const char *identity);

/*
 * Calls f once per identity with a live connection, in no particular order.
 * Stops at the first f that returns < 0 and returns that; else 0.
 */
int presence_foreach_identity(const Presence *p, int (*f)(const char *identity, void *userdata), void *userdata);
