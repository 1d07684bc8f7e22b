/* Admitted device connections and their token deadlines: expired tokens are disconnected */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * IoT Hub closes a connection when its SAS token's se passes; mosquitto
 * checks credentials at CONNECT only. The plugin records every device or
 * module connection it admits, with the token's expiry (0 when the
 * credential has none, e.g. a certificate), and MOSQ_EVT_TICK closes the
 * ones whose time is up.
 *
 * The same table tells will.c whether a write check comes from a live
 * connection: mosquitto 2.0.11 runs MOSQ_EVT_DISCONNECT before it checks and
 * publishes a Will (src/context.c context__disconnect() then
 * context__send_will()), and a connection taken over by a new CONNECT with
 * its client id sends its Will after the new one was admitted
 * (src/handle_connect.c connect__on_authorised()): that one is marked
 * superseded here when its successor is added.
 */
typedef struct TokenExpiryEntry {
        const void *connection;
        char *client_id;
        uint64_t deadline_sec; /* CLOCK_REALTIME seconds; 0 = none, or its kick is under way */
        bool superseded;       /* a newer connection took its client id */
} TokenExpiryEntry;

typedef struct TokenExpiry {
        TokenExpiryEntry *entries;
        size_t n;
        size_t allocated;
        uint64_t next_due_sec; /* the earliest deadline; 0 = none: the tick's whole cost */
} TokenExpiry;

#define TOKEN_EXPIRY_NULL ((TokenExpiry){})

void token_expiry_deinit(TokenExpiry *t);

/* Records an admitted connection; older connections of client_id become superseded. -ENOMEM. */
int token_expiry_add(TokenExpiry *t, const void *connection, const char *client_id, uint64_t deadline_sec);
/* Forgets a connection (its end); unknown connections are ignored. */
void token_expiry_remove(TokenExpiry *t, const void *connection);
/* The connection was admitted, has not ended and was not taken over. */
bool token_expiry_is_live(const TokenExpiry *t, const void *connection);

/*
 * Up to max client ids (copies, the caller frees each) of live connections
 * whose deadline is <= now_sec; their deadlines are cleared so each is
 * returned once, and the rest wait for the next call. The count, or -ENOMEM.
 */
int token_expiry_due(TokenExpiry *t, uint64_t now_sec, char **ret_ids, size_t max);

/* The se of a SAS token password, 0 if password is not a token. */
uint64_t token_expiry_of_password(const char *password);

/* MOSQ_EVT_TICK; userdata is the Plugin. Disconnects expired connections. */
int token_expiry_tick_callback(int event, void *event_data, void *userdata);
