/* Admitted device connections and their token deadlines: expired tokens are disconnected */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker-plugin/broker-api.h"
#include "broker-plugin/plugin.h"
#include "broker-plugin/token-expiry.h"
#include "proto/iothub/sas-token.h"
#include "proto/ipc/frame.h"
#include "proto/runtime/log.h"
#include "proto/util/array.h"
#include "proto/util/cleanup.h"

/* Kicks per tick at most: a burst of expiries must not stall the broker's loop. */
#define KICKS_PER_TICK 64u

void token_expiry_deinit(TokenExpiry *t) {
        for (size_t i = 0; i < t->n; i++)
                free(t->entries[i].client_id);
        free(t->entries);
        *t = TOKEN_EXPIRY_NULL;
}

/*
 * Sorted by connection address: will.c asks "is this connection live?" on
 * every device publish (the write check), so that lookup is a binary
 * search; connects and disconnects pay the O(n) move, as presence.c does.
 * The index where connection is or would go.
 */
static size_t lower_bound(const TokenExpiry *t, const void *connection) {
        size_t lo = 0, hi = t->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if ((uintptr_t) t->entries[mid].connection < (uintptr_t) connection)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static TokenExpiryEntry *find(const TokenExpiry *t, const void *connection) {
        size_t i = lower_bound(t, connection);
        return i < t->n && t->entries[i].connection == connection ? &t->entries[i] : NULL;
}

static void drop(TokenExpiry *t, TokenExpiryEntry *e) {
        size_t i = (size_t) (e - t->entries);

        free(e->client_id);
        memmove(t->entries + i, t->entries + i + 1, (t->n - i - 1) * sizeof(*e));
        t->n--;
}

static void recompute_next_due(TokenExpiry *t) {
        t->next_due_sec = 0;
        for (size_t i = 0; i < t->n; i++) {
                uint64_t d = t->entries[i].deadline_sec;
                if (d > 0 && !t->entries[i].superseded && (t->next_due_sec == 0 || d < t->next_due_sec))
                        t->next_due_sec = d;
        }
}

int token_expiry_add(TokenExpiry *t, const void *connection, const char *client_id, uint64_t deadline_sec) {
        _cleanup_free_ char *copy = strdup(client_id);
        if (!copy)
                return -ENOMEM;

        /* The broker reuses freed connections' memory: an end we never saw must not linger. */
        TokenExpiryEntry *stale = find(t, connection);
        if (stale)
                drop(t, stale);

        if (ARRAY_RESERVE_ONE(t->entries, t->allocated, t->n) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < t->n; i++)
                if (strcmp(t->entries[i].client_id, copy) == 0)
                        t->entries[i].superseded = true;
        size_t at = lower_bound(t, connection);
        memmove(t->entries + at + 1, t->entries + at, (t->n - at) * sizeof(*t->entries));
        t->entries[at] = (TokenExpiryEntry){
                .connection = connection,
                .client_id = TAKE_PTR(copy),
                .deadline_sec = deadline_sec,
        };
        t->n++;
        /* An earlier deadline of a superseded or gone entry only costs one scan that finds nothing. */
        if (deadline_sec > 0 && (t->next_due_sec == 0 || deadline_sec < t->next_due_sec))
                t->next_due_sec = deadline_sec;
        return 0;
}

void token_expiry_remove(TokenExpiry *t, const void *connection) {
        TokenExpiryEntry *e = find(t, connection);
        if (e)
                drop(t, e);
}

bool token_expiry_is_live(const TokenExpiry *t, const void *connection) {
        const TokenExpiryEntry *e = find(t, connection);
        return e && !e->superseded;
}

int token_expiry_due(TokenExpiry *t, uint64_t now_sec, char **ret_ids, size_t max) {
        size_t n = 0;

        if (t->next_due_sec == 0 || now_sec < t->next_due_sec)
                return 0;
        for (size_t i = 0; i < t->n && n < max; i++) {
                TokenExpiryEntry *e = &t->entries[i];

                if (e->superseded || e->deadline_sec == 0 || e->deadline_sec > now_sec)
                        continue;
                ret_ids[n] = strdup(e->client_id);
                if (!ret_ids[n]) {
                        while (n > 0)
                                free(ret_ids[--n]);
                        return -ENOMEM;
                }
                n++;
                e->deadline_sec = 0;
        }
        recompute_next_due(t);
        return (int) n;
}

uint64_t token_expiry_of_password(const char *password) {
        _cleanup_(sas_token_deinit) SasToken token = SAS_TOKEN_NULL;

        /* auth-cache verified this token already; only its se matters here. */
        if (!password || sas_token_parse(password, strlen(password), &token) < 0)
                return 0;
        return token.expiry;
}

int token_expiry_tick_callback(int event, void *event_data, void *userdata) {
        char *ids[KICKS_PER_TICK];
        Plugin *p = userdata;

        /* The common case costs one comparison. */
        if (p->expiry.next_due_sec == 0)
                return MOSQ_ERR_SUCCESS;
        int n = token_expiry_due(&p->expiry, realtime_msec() / 1000u, ids, KICKS_PER_TICK);
        if (n < 0) {
                log_warning_errno(n, "Failed to collect expired connections, will retry: %m");
                return MOSQ_ERR_SUCCESS;
        }
        /* Kicking runs MOSQ_EVT_DISCONNECT, which edits the table: only after the scan. */
        for (int i = 0; i < n; i++) {
                /* No Will: IoT Hub closes the connection on purpose, not because the device was lost. */
                int rc = mosquitto_kick_client_by_clientid(ids[i], false);
                if (rc == MOSQ_ERR_SUCCESS)
                        log_info("Disconnected '%s': its token expired", ids[i]);
                free(ids[i]);
        }
        return MOSQ_ERR_SUCCESS;
}
