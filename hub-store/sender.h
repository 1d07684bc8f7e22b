/* Delivery of one stream: in order, a bounded window in flight, removal on ack */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub-store/store.h"

/*
 * At most SENDER_WINDOW messages of one identity are unacknowledged at a
 * time. The window is what a reconnect may duplicate (DESIGN.md invariant 2:
 * after a lost link we resend from the first record still stored), and what
 * libmosquitto holds in memory per link; 64 still keeps a link busy across a
 * 100 ms round trip at several hundred messages per second.
 */
#define SENDER_WINDOW 64u
/* A window is refilled once no more than this many are in flight (sender_fill()). */
#define SENDER_REFILL_BELOW (SENDER_WINDOW / 2u)

typedef struct SenderEntry {
        int mid;
        uint64_t seq;
        size_t size;
} SenderEntry;

typedef struct Sender {
        Store *store;
        StoreStream *stream;
        uint64_t ttl_ms;        /* 0: messages never expire */
        uint64_t next_seq;      /* the next record to publish is the first stored one >= this */
        SenderEntry window[SENDER_WINDOW];
        size_t n_window;        /* in seq order */
} Sender;

/*
 * Publishes one record; *ret_mid is the id its acknowledgement will carry.
 * Returning -EBADMSG says this record can never be sent (it is removed,
 * counted as dropped); any other error stops filling, the record stays.
 */
typedef int (*SenderPublishFn)(void *userdata, const StoreRecord *r, int *ret_mid);

void sender_init(Sender *s, Store *store, StoreStream *stream, uint64_t ttl_ms);
/* After a lost connection: forget the window and start again from the oldest stored record. */
void sender_reset(Sender *s);
/*
 * Publishes stored records in order until the window is full or none are
 * left; records older than the TTL are removed (expired) instead. Returns
 * the number published, or the publish error if none was.
 */
int sender_fill(Sender *s, uint64_t now_ms, SenderPublishFn publish, void *userdata);
/* The acknowledgement of mid: the record is removed (delivered). -ENOENT for an unknown mid. */
int sender_ack(Sender *s, int mid);

static inline size_t sender_in_flight(const Sender *s) {
        return s->n_window;
}
/* Something is stored that is not in flight yet. */
static inline bool sender_has_more(const Sender *s) {
        return s->stream->messages > 0 && s->next_seq <= s->stream->tail_seq;
}
