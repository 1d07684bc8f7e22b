/* Pacing retries and rates: jittered exponential backoff and a token bucket, for every daemon */
#include <sys/random.h>

#include "proto/ipc/frame.h"
#include "proto/util/backoff.h"

uint64_t backoff_delay_usec(unsigned attempt, uint64_t base_usec, uint64_t cap_usec, uint64_t random) {
        uint64_t d = base_usec;

        for (unsigned i = 0; i < attempt && d < cap_usec; i++)
                d *= 2;
        if (d > cap_usec)
                d = cap_usec;
        return backoff_jitter(d, random);
}

uint64_t backoff_jitter(uint64_t d_usec, uint64_t random) {
        uint64_t half = d_usec / 2;

        return half + (half > 0 ? random % (d_usec - half + 1) : 0);
}

uint64_t backoff_double(uint64_t last_usec, uint64_t min_usec, uint64_t max_usec) {
        if (last_usec == 0)
                return min_usec;
        return last_usec > max_usec / 2 ? max_usec : last_usec * 2;
}

uint64_t backoff_next(uint64_t *current_usec, uint64_t min_usec, uint64_t max_usec) {
        if (*current_usec == 0)
                *current_usec = min_usec;
        uint64_t delay = backoff_jitter(*current_usec, backoff_random());
        *current_usec = backoff_double(*current_usec, min_usec, max_usec);
        return delay;
}

uint64_t backoff_random(void) {
        uint64_t v;

        if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t) sizeof(v))
                v = now_usec() * 6364136223846793005ull + 1442695040888963407ull;
        return v;
}

void token_bucket_init(TokenBucket *b, unsigned per_sec, unsigned burst) {
        b->interval_usec = 1000000u / (per_sec > 0 ? per_sec : 1);
        b->tolerance_usec = (uint64_t) (burst > 0 ? burst - 1 : 0) * b->interval_usec;
        b->tat_usec = 0;
}

bool token_bucket_take(TokenBucket *b, uint64_t now_usec) {
        if (b->tat_usec > now_usec + b->tolerance_usec)
                return false;
        b->tat_usec = (b->tat_usec > now_usec ? b->tat_usec : now_usec) + b->interval_usec;
        return true;
}

uint64_t token_bucket_wait_usec(const TokenBucket *b, uint64_t now_usec) {
        if (b->tat_usec <= now_usec + b->tolerance_usec)
                return 0;
        return b->tat_usec - b->tolerance_usec - now_usec;
}
