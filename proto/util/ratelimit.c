/* Rate limiting of log lines a peer can trigger at will */
#include "proto/util/ratelimit.h"

bool ratelimit_below(RateLimit *rl, uint64_t now, unsigned *ret_suppressed) {
        *ret_suppressed = 0;

        if (rl->begin_usec == 0 || now >= rl->begin_usec + rl->interval_usec) {
                *ret_suppressed = rl->suppressed;
                rl->begin_usec = now > 0 ? now : 1;
                rl->num = 0;
                rl->suppressed = 0;
        }
        if (rl->num < rl->burst) {
                rl->num++;
                return true;
        }
        rl->suppressed++;
        return false;
}
