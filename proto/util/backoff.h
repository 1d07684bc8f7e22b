/* Pacing retries and rates: jittered exponential backoff and a token bucket, for every daemon */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * The first retry comes quickly (DESIGN.md: the first stored message should
 * be on its way within a second of the link returning); repeated failures
 * back off to BACKOFF_CAP_USEC. Jitter spreads identities that failed
 * together so they do not retry together.
 */
#define BACKOFF_BASE_USEC 200000u      /* first retry after 100-200 ms */
#define BACKOFF_CAP_USEC 30000000u     /* 30 s */

/* d = min(cap, base * 2^attempt), returned uniformly in [d/2, d] using random. */
uint64_t backoff_delay_usec(unsigned attempt, uint64_t base_usec, uint64_t cap_usec, uint64_t random);
/* A random number for the jitter (getrandom, not for secrets). */
uint64_t backoff_random(void);
/* d uniformly in [d/2, d] using random: identities or gateways that failed together do not retry together. */
uint64_t backoff_jitter(uint64_t d_usec, uint64_t random);

/* The delay after last without jitter: min_usec when last is 0 (the first failure), else twice last, at most max_usec. */
uint64_t backoff_double(uint64_t last_usec, uint64_t min_usec, uint64_t max_usec);

/*
 * For a retry that keeps its backoff as one number (0 = not failing; reset
 * it to 0 on success): the jittered delay of this retry, in [d/2, d] with d
 * = *current_usec (min_usec the first time), and *current_usec doubled (at
 * most max_usec) for the next.
 */
uint64_t backoff_next(uint64_t *current_usec, uint64_t min_usec, uint64_t max_usec);

/*
 * A token bucket in the GCRA form (one "theoretical arrival time" instead of
 * a token count): at most per_sec events per second on average, bursts of up
 * to burst. Integer microseconds, CLOCK_MONOTONIC.
 */
typedef struct TokenBucket {
        uint64_t interval_usec;  /* 1 s / per_sec */
        uint64_t tolerance_usec; /* (burst - 1) * interval */
        uint64_t tat_usec;       /* when the bucket is next "empty-handed" */
} TokenBucket;

void token_bucket_init(TokenBucket *b, unsigned per_sec, unsigned burst);
/* Takes a token if one is available at now. */
bool token_bucket_take(TokenBucket *b, uint64_t now_usec);
/* Microseconds until a token is available (0: now). */
uint64_t token_bucket_wait_usec(const TokenBucket *b, uint64_t now_usec);
