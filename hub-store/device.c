/* One upstream identity: its presence, its $upstream streams, its link, its requests for the hub */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hub-store/device.h"
#include "proto/ipc/frame.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

static RateLimit request_ratelimit = RATELIMIT_INIT(10u * 1000000u, 10u);

int device_new(Device **ret, const char *identity) {
        _cleanup_(device_freep) Device *d = calloc(1, sizeof(*d));

        if (!d)
                return -ENOMEM;
        d->identity = strdup(identity);
        if (!d->identity)
                return -ENOMEM;
        *ret = TAKE_PTR(d);
        return 0;
}

Device *device_free(Device *d) {
        if (!d)
                return NULL;
        link_free(d->link);
        device_requests_free(d);
        free(d->identity);
        free(d);
        return NULL;
}

/* Over all priorities: the messages stored, or those delivered since start. */
static uint64_t device_sum(const Device *d, bool delivered) {
        uint64_t n = 0;
        for (size_t p = 0; p <= STORE_PRIORITY_MAX; p++)
                if (d->streams[p])
                        n += delivered ? d->streams[p]->delivered : d->streams[p]->messages;
        return n;
}

uint64_t device_queued(const Device *d) {
        return device_sum(d, false);
}

uint64_t device_delivered(const Device *d) {
        return device_sum(d, true);
}

bool device_needs_link(const Device *d) {
        return d->always_linked || d->connected || device_queued(d) > 0 || d->n_requests > 0;
}

void device_add_stream(Device *d, StoreStream *st) {
        if (st->priority > STORE_PRIORITY_MAX || d->streams[st->priority] == st)
                return;
        d->streams[st->priority] = st;
        if (d->link)
                (void) link_add_stream(d->link, st);
}

int device_open_link(Device *d, sd_event *e, const LinkSettings *settings, const LinkOps *ops, void *userdata,
                     Store *store) {
        int r;

        r = link_new(&d->link, e, settings, ops, userdata, store, d->identity);
        if (r < 0)
                return r;
        for (size_t p = 0; p <= STORE_PRIORITY_MAX; p++)
                if (d->streams[p])
                        (void) link_add_stream(d->link, d->streams[p]);
        link_start(d->link);
        return 0;
}

static void request_free(UpstreamRequest *r) {
        free(r->topic);
        free(r->payload);
}

void device_requests_free(Device *d) {
        for (size_t i = 0; i < d->n_requests; i++)
                request_free(&d->requests[i]);
        free(d->requests);
        d->requests = NULL;
        d->n_requests = 0;
}

static void device_requests_drop_first(Device *d, size_t n) {
        for (size_t i = 0; i < n; i++)
                request_free(&d->requests[i]);
        memmove(d->requests, d->requests + n, (d->n_requests - n) * sizeof(*d->requests));
        d->n_requests -= n;
}

void device_flush_requests(Device *d) {
        size_t sent = 0;

        while (sent < d->n_requests && d->link) {
                UpstreamRequest *req = &d->requests[sent];
                int r = link_send(d->link, req->topic, req->payload, req->len);
                if (r == -ENOTCONN || r == -ECONNRESET)
                        break; /* stays for the next time the link is up */
                if (r < 0)
                        log_ratelimit_warning(&request_ratelimit, "Request of '%s' on '%s' not sent upstream: %s",
                                              d->identity, req->topic, strerror(-r));
                else
                        log_debug("Sent request of '%s' upstream on '%s'", d->identity, req->topic);
                sent++;
        }
        device_requests_drop_first(d, sent);
}

int device_queue_request(Device *d, const char *topic, const void *payload, size_t len) {
        _cleanup_free_ char *t = NULL;
        _cleanup_free_ void *p = NULL;

        if (d->n_requests >= DEVICE_REQUESTS_MAX)
                return -ENOBUFS;
        t = strdup(topic);
        p = malloc(len > 0 ? len : 1);
        if (!t || !p)
                return -ENOMEM;
        if (len > 0) /* libmosquitto hands an empty payload (a twin GET) on as NULL */
                memcpy(p, payload, len);
        UpstreamRequest *a = reallocarray(d->requests, d->n_requests + 1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        d->requests = a;
        a[d->n_requests++] = (UpstreamRequest){
                .topic = TAKE_PTR(t),
                .payload = TAKE_PTR(p),
                .len = len,
                .deadline_usec = now_usec() + DEVICE_REQUEST_WAIT_USEC,
        };
        return 0;
}

size_t device_expire_requests(Device *d, uint64_t now) {
        size_t expired = 0;

        while (expired < d->n_requests && d->requests[expired].deadline_usec <= now)
                expired++;
        if (expired > 0)
                device_requests_drop_first(d, expired);
        return expired;
}
