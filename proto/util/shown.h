/* Untrusted text and values in one-line error messages */
#pragma once

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>

/* Longest piece of untrusted text an error message repeats. */
#define SHOWN_MAX 64u

/* s for a one-line message: control bytes become '?', a longer value ends in "...". */
void shown(const char *s, char out[static SHOWN_MAX + 4]);

/* "an object", "a string", "a number"...: what a JSON value is, for "expected X, found Y". */
const char *json_type_name(const json_t *v);

/* Sets *ret_error (if ret_error) to the formatted line; returns -EBADMSG, or -ENOMEM. */
int fail_bad_message(char **ret_error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with another errno (positive): returns -error, or -ENOMEM. */
int fail_errno(char **ret_error, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/*
 * s[start, end) of a text being parsed, quoted ("'INTO'"), made safe as by
 * shown() and cut after max bytes; at_end (e.g. "end of input") when start
 * is past the text. An empty span shows the one character at start. out
 * has room for max + 8 bytes.
 */
void shown_span(const char *s, size_t len, size_t start, size_t end, size_t max, const char *at_end, char *out);

/*
 * A parser's first error: unless *error is set already, sets it to
 * "position N: <fmt>" with N = at + 1. Returns -EINVAL, or -ENOMEM.
 */
int fail_at_position(char **error, size_t at, const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));
/*
 * A parser's end with its first error: on failure (r < 0) *error goes to
 * *ret_error, on success *ret_error is set to NULL; *error is freed unless
 * handed over. Returns r.
 */
int error_hand_over(int r, char **error, char **ret_error);
