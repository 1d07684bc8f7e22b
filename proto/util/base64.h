/* Strict, padded base64 (RFC 4648 §4) over OpenSSL's EVP block coder */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * Internal to proto/ (sas.c, config.c). Decoding is strict: the length is a
 * multiple of 4, only [A-Za-z0-9+/] with at most two trailing '=', no
 * whitespace. EVP_DecodeBlock() alone would skip whitespace and keep the
 * padding's zero bytes in its count.
 */

/* -EINVAL if malformed; *ret is NUL-terminated for convenience, *ret_len excludes it. */
int base64_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len);
/* Padded, no line breaks. */
int base64_encode(const void *p, size_t len, char **ret);
