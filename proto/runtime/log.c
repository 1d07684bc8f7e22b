/* Logging: levels, errno-returning helpers, a pluggable sink */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

/* The only mutable file-scope state outside main.c files (STYLE.md §13). */
static int log_max_level = LOG_INFO;
static LogSink log_sink;
static void *log_sink_userdata;

static const char *const level_names[] = {
        [LOG_ERR] = "error",
        [LOG_WARNING] = "warning",
        [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",
        [LOG_DEBUG] = "debug",
};

void log_set_max_level(int level) {
        log_max_level = level;
}

int log_get_max_level(void) {
        return log_max_level;
}

int log_level_from_string(const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (level_names[i] && strcasecmp(level_names[i], s) == 0)
                        return (int) i;
        return -EINVAL;
}

void log_set_sink(LogSink sink, void *userdata) {
        log_sink = sink;
        log_sink_userdata = userdata;
}

int log_internal(int level, int error, const char *file, int line, const char *fmt, ...) {
        int saved_errno = errno;
        int e = error < 0 ? -error : error;

        if (level > log_max_level)
                return -e;

        /* %m prints the error we were given, not whatever errno happens to hold. */
        errno = e;
        char message[2048];
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);

        if (log_sink)
                log_sink(level, message, log_sink_userdata);
        else if (log_max_level >= LOG_DEBUG)
                fprintf(stderr, "<%d>%s (%s:%d)\n", level, message, file, line);
        else
                fprintf(stderr, "<%d>%s\n", level, message);

        errno = saved_errno;
        return -e;
}
