/* A burst-per-interval limit for log lines a peer can trigger at will */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct RateLimit {
        uint64_t interval_usec;
        unsigned burst;
        uint64_t begin_usec;
        unsigned count;
        unsigned dropped; /* in the previous, exhausted interval(s) */
} RateLimit;

#define RATELIMIT_INIT(interval, n) ((RateLimit){ .interval_usec = (interval), .burst = (n) })

/*
 * True if one more line may be logged at now_usec (CLOCK_MONOTONIC). When a
 * new interval starts after lines were dropped, *ret_dropped says how many
 * (log "Dropped N similar message(s)"), else 0.
 */
bool ratelimit_below(RateLimit *rl, uint64_t now_usec, unsigned *ret_dropped);
