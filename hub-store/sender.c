/* Delivery of one stream: in order, a bounded window in flight, removal on ack */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "hub-store/sender.h"
#include "proto/runtime/log.h"

void sender_init(Sender *s, Store *store, StoreStream *stream, uint64_t ttl_ms) {
        *s = (Sender) {
                .store = store,
                .stream = stream,
                .ttl_ms = ttl_ms,
        };
}

void sender_reset(Sender *s) {
        s->n_window = 0;
        s->next_seq = 0;
}

typedef struct FillContext {
        Sender *sender;
        uint64_t now_ms;
        SenderPublishFn publish;
        void *userdata;
        int published;
        int error;
} FillContext;

static bool record_expired(const Sender *s, const StoreRecord *r, uint64_t now_ms) {
        return s->ttl_ms > 0 && now_ms > r->message.time_ms && now_ms - r->message.time_ms > s->ttl_ms;
}

static int sender_fill_one(void *userdata, const StoreRecord *r) {
        FillContext *c = userdata;
        Sender *s = c->sender;
        int mid, r2;

        if (record_expired(s, r, c->now_ms)) {
                r2 = store_remove(s->store, s->stream, r->seq, r->size, STORE_REMOVE_EXPIRED);
                if (r2 < 0 && r2 != -ENOENT) {
                        c->error = r2;
                        return 1;
                }
                s->next_seq = r->seq + 1;
                return 0;
        }

        r2 = c->publish(c->userdata, r, &mid);
        if (r2 == -EBADMSG) {
                log_warning("Message %" PRIu64 " of '%s' cannot be sent upstream, dropping it",
                            r->seq, s->stream->identity);
                r2 = store_remove(s->store, s->stream, r->seq, r->size, STORE_REMOVE_DROPPED);
                if (r2 < 0 && r2 != -ENOENT) {
                        c->error = r2;
                        return 1;
                }
                s->next_seq = r->seq + 1;
                return 0;
        }
        if (r2 < 0) {
                c->error = r2;
                return 1;
        }

        s->window[s->n_window++] = (SenderEntry) { .mid = mid, .seq = r->seq, .size = r->size };
        s->next_seq = r->seq + 1;
        c->published++;
        return s->n_window >= SENDER_WINDOW ? 1 : 0;
}

int sender_fill(Sender *s, uint64_t now_ms, SenderPublishFn publish, void *userdata) {
        FillContext c = { .sender = s, .now_ms = now_ms, .publish = publish, .userdata = userdata };

        /*
         * Each read is a RocksDB iterator and a seek through every level-0
         * file: refilled after every acknowledgement, a draining backlog
         * paid one per message. Half a window still keeps a link busy.
         */
        if (s->n_window > SENDER_REFILL_BELOW)
                return 0;

        while (s->n_window < SENDER_WINDOW && c.error == 0) {
                int n = store_read(s->store, s->stream, s->next_seq, SENDER_WINDOW - s->n_window,
                                   sender_fill_one, &c);
                if (n < 0)
                        return c.published > 0 ? c.published : n;
                if (n == 0)
                        break;
        }
        if (c.error < 0 && c.published == 0)
                return c.error;
        return c.published;
}

int sender_ack(Sender *s, int mid) {
        for (size_t i = 0; i < s->n_window; i++) {
                if (s->window[i].mid != mid)
                        continue;
                SenderEntry e = s->window[i];
                memmove(s->window + i, s->window + i + 1, (s->n_window - i - 1) * sizeof(*s->window));
                s->n_window--;
                int r = store_remove(s->store, s->stream, e.seq, e.size, STORE_REMOVE_DELIVERED);
                /* -ENOENT: expired or dropped while in flight, already counted. */
                return r == -ENOENT ? 0 : r;
        }
        return -ENOENT;
}
