/* Untrusted text and values in one-line error messages */
#pragma once

#include <jansson.h>

/* Longest piece of untrusted text an error message repeats. */
#define SHOWN_MAX 64u

/* s for a one-line message: control bytes become '?', a longer value ends in "...". */
void shown(const char *s, char out[static SHOWN_MAX + 4]);

/* "an object", "a string", "a number"...: what a JSON value is, for "expected X, found Y". */
const char *json_type_name(const json_t *v);

/* Sets *ret_error (if ret_error) to the formatted line; returns -EBADMSG, or -ENOMEM. */
int fail_bad_message(char **ret_error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
