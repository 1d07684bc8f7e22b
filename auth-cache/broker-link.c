/* Telling the local broker to disconnect identities that lost their access */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth-cache/broker-link.h"
#include "proto/ipc/bus.h"
#include "proto/runtime/log.h"
#include "proto/util/array.h"
#include "proto/util/cleanup.h"

typedef struct Kick {
        char *client_id;
        bool sent; /* published on the current connection, not acknowledged yet */
} Kick;

struct BrokerLink {
        Bus *bus;
        Kick *kicks;
        size_t n_kicks;
        size_t n_allocated;
};

static void link_flush(BrokerLink *l);

static Kick *kick_find(BrokerLink *l, const char *client_id) {
        for (size_t i = 0; i < l->n_kicks; i++)
                if (strcmp(l->kicks[i].client_id, client_id) == 0)
                        return &l->kicks[i];
        return NULL;
}

static void kick_remove(BrokerLink *l, Kick *k) {
        size_t i = (size_t) (k - l->kicks);

        free(k->client_id);
        memmove(l->kicks + i, l->kicks + i + 1, (l->n_kicks - i - 1) * sizeof(*l->kicks));
        l->n_kicks--;
}

/* The broker acknowledges one connection's publishes in order: this is the oldest sent kick. */
static void on_kick_done(Bus *b, int reason, void *userdata) {
        BrokerLink *l = userdata;
        Kick *k = NULL;

        for (size_t i = 0; i < l->n_kicks && !k; i++)
                if (l->kicks[i].sent)
                        k = &l->kicks[i];
        if (!k)
                return;
        if (reason < 0) {
                k->sent = false; /* the connection went first: sent again on the next one */
                return;
        }
        /* A refusal is final: retrying what the broker rejects would loop forever. */
        if (reason >= 0x80)
                log_warning("The broker refused to kick '%s': %s", k->client_id, strerror(EPERM));
        else
                log_info("The broker took the kick of '%s'", k->client_id);
        kick_remove(l, k);
}

static void link_flush(BrokerLink *l) {
        for (size_t i = 0; i < l->n_kicks; i++) {
                Kick *k = &l->kicks[i];
                int r;

                if (k->sent)
                        continue;
                r = bus_publish(l->bus, BUS_TOPIC_KICK, k->client_id, strlen(k->client_id), NULL, NULL, on_kick_done,
                                l);
                if (r < 0) {
                        if (r != -ENOTCONN)
                                log_warning_errno(r, "Failed to send the kick of '%s', will retry: %m", k->client_id);
                        return;
                }
                k->sent = true;
        }
}

static void on_connected(Bus *b, void *userdata) {
        BrokerLink *l = userdata;

        if (l->n_kicks > 0)
                log_info("Connected to the broker, %zu kick(s) pending", l->n_kicks);
        link_flush(l);
}

int broker_link_kick(BrokerLink *l, const char *client_id) {
        if (kick_find(l, client_id))
                return 0;
        if (l->n_kicks >= BROKER_KICKS_MAX)
                return -ENOBUFS;
        if (ARRAY_RESERVE_ONE(l->kicks, l->n_allocated, l->n_kicks) < 0)
                return -ENOMEM;
        char *id = strdup(client_id);
        if (!id)
                return -ENOMEM;
        l->kicks[l->n_kicks++] = (Kick){ .client_id = id };
        link_flush(l);
        return 0;
}

void broker_link_unkick(BrokerLink *l, const char *client_id) {
        Kick *k = kick_find(l, client_id);

        if (k && !k->sent)
                kick_remove(l, k);
}

size_t broker_link_pending(const BrokerLink *l) {
        return l->n_kicks;
}

bool broker_link_connected(const BrokerLink *l) {
        return bus_connected(l->bus);
}

int broker_link_new(BrokerLink **ret, sd_event *e, const char *socket_path) {
        _cleanup_(broker_link_freep) BrokerLink *l = NULL;
        static const BusHandlers handlers = {
                .connected = on_connected,
        };
        int r;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        r = bus_new(&l->bus, e, socket_path, "auth-cache", &handlers, l);
        if (r < 0)
                return r;
        r = bus_start(l->bus);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

BrokerLink *broker_link_free(BrokerLink *l) {
        if (!l)
                return NULL;
        bus_free(l->bus);
        for (size_t i = 0; i < l->n_kicks; i++)
                free(l->kicks[i].client_id);
        free(l->kicks);
        free(l);
        return NULL;
}
