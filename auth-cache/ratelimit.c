/* A burst-per-interval limit for log lines a peer can trigger at will */
#include "auth-cache/ratelimit.h"

bool ratelimit_below(RateLimit *rl, uint64_t now_usec, unsigned *ret_dropped) {
        *ret_dropped = 0;
        if (rl->begin_usec == 0 || now_usec - rl->begin_usec >= rl->interval_usec) {
                *ret_dropped = rl->dropped;
                rl->begin_usec = now_usec ? now_usec : 1;
                rl->count = 0;
                rl->dropped = 0;
        }
        if (rl->count < rl->burst) {
                rl->count++;
                return true;
        }
        rl->dropped++;
        return false;
}
