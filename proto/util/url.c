/* Percent-encoding, as the Azure SDKs do it */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "proto/util/cleanup.h"
#include "proto/util/url.h"

static bool url_char_is_unreserved(unsigned char c) {
        /* encodeURIComponent() leaves exactly these. */
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               (c != 0 && strchr("-_.!~*'()", c));
}

int url_encode(const char *s, size_t len, char **ret) {
        static const char hex[] = "0123456789ABCDEF";

        if ((!s && len > 0) || !ret || len > SIZE_MAX / 3 - 1)
                return -EINVAL;

        _cleanup_free_ char *buf = malloc(len * 3 + 1);
        if (!buf)
                return -ENOMEM;

        char *p = buf;
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];
                if (url_char_is_unreserved(c))
                        *p++ = (char) c;
                else {
                        *p++ = '%';
                        *p++ = hex[c >> 4];
                        *p++ = hex[c & 15];
                }
        }
        *p = 0;

        *ret = TAKE_PTR(buf);
        return 0;
}

int url_decode(const char *s, size_t len, char **ret) {
        if ((!s && len > 0) || !ret || len == SIZE_MAX)
                return -EINVAL;

        _cleanup_free_ char *buf = malloc(len + 1);
        if (!buf)
                return -ENOMEM;

        char *p = buf;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == 0)
                        return -EINVAL;
                if (s[i] != '%') {
                        *p++ = s[i];
                        continue;
                }
                if (len - i < 3)
                        return -EINVAL;
                int hi = OPENSSL_hexchar2int((unsigned char) s[i + 1]);
                int lo = OPENSSL_hexchar2int((unsigned char) s[i + 2]);
                if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                        return -EINVAL;
                *p++ = (char) (hi << 4 | lo);
                i += 2;
        }
        *p = 0;

        *ret = TAKE_PTR(buf);
        return 0;
}
