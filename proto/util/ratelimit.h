/* Rate limiting of log lines a peer can trigger at will */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "proto/ipc/frame.h"
#include "proto/runtime/log.h"

/*
 * At most burst lines per interval; the first line of the next interval
 * says how many were dropped (STYLE.md §8). A device that misbehaves in a
 * loop must not flood the broker's log.
 */
typedef struct RateLimit {
        uint64_t interval_usec;
        unsigned burst;
        uint64_t begin_usec;
        unsigned num;
        unsigned suppressed;
} RateLimit;

#define RATELIMIT_INIT(interval, n) ((RateLimit){ .interval_usec = (interval), .burst = (n) })

/* True if a line may be logged at now; then *ret_suppressed is the count dropped before it (else 0). */
bool ratelimit_below(RateLimit *rl, uint64_t now, unsigned *ret_suppressed);

#define log_ratelimit(rl, level, ...)                                                           \
        do {                                                                                    \
                unsigned _suppressed_;                                                          \
                if (ratelimit_below((rl), now_usec(), &_suppressed_)) {                         \
                        if (_suppressed_ > 0)                                                   \
                                log_full((level), "Dropped %u similar message(s)", _suppressed_); \
                        log_full((level), __VA_ARGS__);                                         \
                }                                                                               \
        } while (0)

#define log_ratelimit_warning(rl, ...) log_ratelimit((rl), LOG_WARNING, __VA_ARGS__)
