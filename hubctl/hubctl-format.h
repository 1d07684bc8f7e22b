/* Human renderings of sizes, durations and timestamps for hubctl */
#pragma once

#include <stdint.h>

#define FORMAT_BYTES_MAX 32u
#define FORMAT_DURATION_MAX 32u
#define FORMAT_TIMESTAMP_MAX 64u

/* "0 B", "1023 B", "1.5 KiB", "12.0 MiB", ... (binary units). Returns buf. */
char *format_bytes(char buf[static FORMAT_BYTES_MAX], uint64_t bytes);
/* "45s", "3m12s", "2h05m", "1d03h": two units at most. Returns buf. */
char *format_duration(char buf[static FORMAT_DURATION_MAX], uint64_t sec);
/* Local time "2024-05-01 12:00:03 UTC" of milliseconds since the epoch. Returns buf. */
char *format_timestamp(char buf[static FORMAT_TIMESTAMP_MAX], uint64_t msec);
