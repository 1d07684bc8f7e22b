/* Untrusted text and values in one-line error messages */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/util/cleanup.h"
#include "proto/util/shown.h"

void shown(const char *s, char out[static SHOWN_MAX + 4]) {
        size_t i = 0;

        for (; s[i] && i < SHOWN_MAX; i++)
                out[i] = (unsigned char) s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
        if (s[i])
                out[i++] = '.', out[i++] = '.', out[i++] = '.';
        out[i] = 0;
}

const char *json_type_name(const json_t *v) {
        switch (json_typeof(v)) {
        case JSON_OBJECT:
                return "an object";
        case JSON_ARRAY:
                return "an array";
        case JSON_STRING:
                return "a string";
        case JSON_INTEGER:
        case JSON_REAL:
                return "a number";
        case JSON_TRUE:
        case JSON_FALSE:
                return "a boolean";
        default:
                return "null";
        }
}

static int vfail(char **ret_error, int error, const char *fmt, va_list ap) {
        if (!ret_error)
                return -error;
        if (vasprintf(ret_error, fmt, ap) < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return -error;
}

int fail_bad_message(char **ret_error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        int r = vfail(ret_error, EBADMSG, fmt, ap);
        va_end(ap);
        return r;
}

int fail_errno(char **ret_error, int error, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        int r = vfail(ret_error, error, fmt, ap);
        va_end(ap);
        return r;
}

void shown_span(const char *s, size_t len, size_t start, size_t end, size_t max, const char *at_end, char *out) {
        if (start >= len) {
                snprintf(out, max + 8, "%s", at_end);
                return;
        }
        if (end <= start)
                end = start + 1;
        size_t n = 0;
        out[n++] = '\'';
        for (size_t i = start; i < end && i < len && i - start < max; i++)
                out[n++] = (unsigned char) s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
        if (end - start > max)
                out[n++] = '.', out[n++] = '.', out[n++] = '.';
        out[n++] = '\'';
        out[n] = 0;
}

int fail_at_position(char **error, size_t at, const char *fmt, va_list ap) {
        char *msg = NULL;

        if (*error)
                return -EINVAL;
        if (vasprintf(&msg, fmt, ap) < 0)
                return -ENOMEM;
        int r = asprintf(error, "position %zu: %s", at + 1, msg);
        free(msg);
        if (r < 0) {
                *error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

int error_hand_over(int r, char **error, char **ret_error) {
        if (ret_error)
                *ret_error = r < 0 ? TAKE_PTR(*error) : NULL;
        free(*error);
        *error = NULL;
        return r;
}
