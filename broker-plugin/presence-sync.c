/* Telling a restarted hub-store which identities are connected */
#include <errno.h>
#include <string.h>

#include "broker-plugin/broker-api.h"
#include "broker-plugin/plugin.h"
#include "broker-plugin/presence-sync.h"
#include "proto/ipc/frame.h"
#include "proto/util/ratelimit.h"

static int presence_sync_one(const char *identity, void *userdata) {
        Plugin *p = userdata;
        int status = 0;
        int r;

        r = backend_presence(&p->backend, identity, true, &status);
        if (r < 0) {
                /* hub-store went away again: stop here rather than wait for it once per identity. */
                log_ratelimit_warning(&p->store_ratelimit,
                                      "Failed to tell hub-store again that '%s' is connected, ignoring: %s", identity,
                                      strerror(-r));
                return r;
        }
        if (status < 0)
                log_ratelimit_warning(&p->store_ratelimit,
                                      "hub-store refused to record again that '%s' is connected, ignoring: %s",
                                      identity, strerror(-status));
        return 0;
}

int presence_tick_callback(int event, void *event_data, void *userdata) {
        Plugin *p = userdata;
        FrameClient *c = &p->backend.hub_store.client;
        uint64_t now = now_usec();

        if (p->presence_syncing || now - p->presence_checked_usec < PRESENCE_CHECK_USEC)
                return MOSQ_ERR_SUCCESS;
        p->presence_checked_usec = now;

        /*
         * Telemetry never calls hub-store (it goes to the ingest log), so a
         * restarted hub-store would otherwise hear who is connected only at
         * the next connect or disconnect.
         */
        if (frame_client_peer_gone(c)) {
                log_ratelimit(&p->store_ratelimit, LOG_INFO, "hub-store closed its connection, it may have restarted");
                p->presence_lost = true;
        }
        if (!p->presence_lost)
                return MOSQ_ERR_SUCCESS;

        p->presence_lost = false;
        p->presence_syncing = true;
        int r = presence_foreach_identity(&p->presence, presence_sync_one, p);
        p->presence_syncing = false;
        /* This pass made the new connection: the next reply must not start another pass. */
        p->presence_synced = c->connects;
        if (r < 0)
                p->presence_lost = true; /* hub-store not back yet: the next check tries again */
        return MOSQ_ERR_SUCCESS;
}

void presence_sync(Plugin *p) {
        unsigned connects = p->backend.hub_store.client.connects;

        /* The resync calls hub-store itself; those replies must not start another one. */
        if (p->presence_syncing)
                return;
        if (connects == p->presence_synced)
                return;
        if (connects <= 1 && !p->presence_lost) {
                p->presence_synced = connects; /* the first connection: every report went over it */
                return;
        }

        /*
         * Remembered before the calls: if the connection drops in between, the
         * next reply comes over a newer one and the whole set is sent again.
         */
        p->presence_synced = connects;
        p->presence_lost = false;
        p->presence_syncing = true;
        log_ratelimit(&p->store_ratelimit, LOG_INFO,
                      "New connection to hub-store (%u), telling it again which identities are connected", connects);
        (void) presence_foreach_identity(&p->presence, presence_sync_one, p);
        p->presence_syncing = false;
}
