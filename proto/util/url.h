/* Percent-encoding, as the Azure SDKs do it */
#pragma once

#include <stddef.h>

/* Percent-encoding as the Azure SDKs do it (encodeURIComponent). */
int url_encode(const char *s, size_t len, char **ret);
/* -EINVAL on a bad %xx escape or an encoded NUL; '+' stays '+'. */
int url_decode(const char *s, size_t len, char **ret);
