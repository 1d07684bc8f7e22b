/* Logging: levels, errno-returning helpers, a pluggable sink */
#pragma once

#include <stdarg.h>
#include <syslog.h>

/*
 * Levels are syslog's. Daemons write "<N>message" lines to stderr, which the
 * journal understands (sd-daemon(3)); the broker plugin installs a sink that
 * forwards to mosquitto_log_printf() so the broker's log settings govern it.
 * proto/ itself never logs above LOG_DEBUG: it returns errors instead.
 */
typedef void (*LogSink)(int level, const char *message, void *userdata);

void log_set_max_level(int level);
int log_get_max_level(void);
/* Parses "error", "warning", "notice", "info", "debug"; -EINVAL otherwise. */
int log_level_from_string(const char *s);
void log_set_sink(LogSink sink, void *userdata);

/* Logs and returns -abs(error); %m in fmt prints strerror(abs(error)). */
int log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

#define log_full_errno(level, error, ...) log_internal((level), (error), __FILE__, __LINE__, __VA_ARGS__)
#define log_full(level, ...) (void) log_internal((level), 0, __FILE__, __LINE__, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, (error), __VA_ARGS__)
#define log_info_errno(error, ...) log_full_errno(LOG_INFO, (error), __VA_ARGS__)
#define log_notice_errno(error, ...) log_full_errno(LOG_NOTICE, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, (error), __VA_ARGS__)
