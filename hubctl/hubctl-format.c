/* Human renderings of sizes, durations and timestamps for hubctl */
#include <inttypes.h>
#include <stdio.h>
#include <time.h>

#include "hubctl/hubctl-format.h"

char *format_bytes(char buf[static FORMAT_BYTES_MAX], uint64_t bytes) {
        static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };

        if (bytes < 1024) {
                snprintf(buf, FORMAT_BYTES_MAX, "%" PRIu64 " B", bytes);
                return buf;
        }

        double v = (double) bytes / 1024.0;
        size_t u = 0;
        /* Switch unit at 1023.95 so rounding never prints "1024.0 KiB". */
        while (v >= 1023.95 && u + 1 < sizeof(units) / sizeof(units[0])) {
                v /= 1024.0;
                u++;
        }
        snprintf(buf, FORMAT_BYTES_MAX, "%.1f %s", v, units[u]);
        return buf;
}

char *format_duration(char buf[static FORMAT_DURATION_MAX], uint64_t sec) {
        if (sec < 60)
                snprintf(buf, FORMAT_DURATION_MAX, "%" PRIu64 "s", sec);
        else if (sec < 3600)
                snprintf(buf, FORMAT_DURATION_MAX, "%" PRIu64 "m%02" PRIu64 "s", sec / 60, sec % 60);
        else if (sec < 86400)
                snprintf(buf, FORMAT_DURATION_MAX, "%" PRIu64 "h%02" PRIu64 "m", sec / 3600, sec % 3600 / 60);
        else
                snprintf(buf, FORMAT_DURATION_MAX, "%" PRIu64 "d%02" PRIu64 "h", sec / 86400, sec % 86400 / 3600);
        return buf;
}

char *format_timestamp(char buf[static FORMAT_TIMESTAMP_MAX], uint64_t msec) {
        time_t t = (time_t) (msec / 1000);
        struct tm tm;

        if (!localtime_r(&t, &tm) || strftime(buf, FORMAT_TIMESTAMP_MAX, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                snprintf(buf, FORMAT_TIMESTAMP_MAX, "@%" PRIu64, msec / 1000);
        return buf;
}
