/* One upstream identity: its presence, its $upstream streams, its link, its requests for the hub */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub-store/link.h"
#include "hub-store/store.h"
#include "proto/util/cleanup.h"

/*
 * A twin request or method response waits this long for its identity's
 * link; its sender times out and asks again anyway, so holding it longer
 * would only deliver stale requests.
 */
#define DEVICE_REQUEST_WAIT_USEC (30u * 1000000u)
#define DEVICE_REQUESTS_MAX 256u

/* A request of an identity for the hub (twin, method response), held until its link is up. */
typedef struct UpstreamRequest {
        char *topic;
        void *payload;
        size_t len;
        uint64_t deadline_usec;    /* CLOCK_MONOTONIC: dropped after this */
} UpstreamRequest;

/*
 * Everything known about one identity. The Manager owns the Devices (by
 * identity) and decides when a link opens and closes (manager-links.c):
 * the connect-rate limit and the uplink state span all of them.
 */
typedef struct Device {
        char *identity;
        bool connected;            /* per the broker plugin's presence announcements */
        StoreStream *streams[STORE_PRIORITY_MAX + 1]; /* $upstream by priority; NULL until first needed */
        Link *link;                /* NULL: closed */
        bool link_setup_failed;    /* logged once, retried every tick */
        uint64_t unneeded_since;   /* CLOCK_MONOTONIC µs when the link stopped being needed; 0: needed */
        UpstreamRequest *requests; /* from the bus, for the hub, in order */
        size_t n_requests;
        bool announced_up;         /* the bus was told this identity's link is up */
        bool always_linked;        /* the edge's own $edgeHub and $edgeAgent: their twins are our configuration */
} Device;

int device_new(Device **ret, const char *identity);
/* Closes the link and drops the requests. */
Device *device_free(Device *d);

/* Messages stored for d's $upstream, over all priorities; and delivered since start. */
uint64_t device_queued(const Device *d);
uint64_t device_delivered(const Device *d);
/* Presence, a backlog, a request waiting or the edge's own identity keep a link open. */
bool device_needs_link(const Device *d);

/* st ($upstream, any priority) belongs to d; it goes out on d's link, now if it is open. */
void device_add_stream(Device *d, StoreStream *st);
/* A new link for d (d->link NULL) carrying its streams, started. */
int device_open_link(Device *d, sd_event *e, const LinkSettings *settings, const LinkOps *ops, void *userdata,
                     Store *store);

/* Queues a copy of a request for the hub. -ENOBUFS when DEVICE_REQUESTS_MAX wait already. */
int device_queue_request(Device *d, const char *topic, const void *payload, size_t len);
/* Sends what waits, in order, while the link takes it; the rest stays for the next time it is up. */
void device_flush_requests(Device *d);
/* Drops requests whose deadline passed. Returns how many. */
size_t device_expire_requests(Device *d, uint64_t now);
void device_requests_free(Device *d);

DEFINE_CLEANUP_FUNC(Device, device_free);
