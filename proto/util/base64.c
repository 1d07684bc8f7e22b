/* Strict, padded base64 (RFC 4648 §4) over OpenSSL's EVP block coder */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "proto/util/base64.h"
#include "proto/util/cleanup.h"

static bool base64_char_is_valid(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

int base64_decode(const char *s, size_t len, uint8_t **ret, size_t *ret_len) {
        size_t pad = 0;

        if (!s || !ret || len % 4 != 0 || len > (size_t) INT32_MAX)
                return -EINVAL;

        while (pad < 2 && pad < len && s[len - 1 - pad] == '=')
                pad++;
        for (size_t i = 0; i < len - pad; i++)
                if (!base64_char_is_valid(s[i]))
                        return -EINVAL;

        _cleanup_free_ uint8_t *buf = malloc(len / 4 * 3 + 1);
        if (!buf)
                return -ENOMEM;

        /* EVP_DecodeBlock() counts the bytes the '=' stand for; the caller gets the real length. */
        int n = len == 0 ? 0 : EVP_DecodeBlock(buf, (const unsigned char *) s, (int) len);
        if (n < 0 || (size_t) n < pad)
                return -EINVAL;
        n -= (int) pad;
        buf[n] = 0;

        *ret = TAKE_PTR(buf);
        if (ret_len)
                *ret_len = (size_t) n;
        return 0;
}

int base64_encode(const void *p, size_t len, char **ret) {
        if (!ret || len > (size_t) INT32_MAX / 4 * 3 - 3)
                return -EINVAL;

        _cleanup_free_ char *buf = malloc((len + 2) / 3 * 4 + 1);
        if (!buf)
                return -ENOMEM;

        (void) EVP_EncodeBlock((unsigned char *) buf, p, (int) len);
        *ret = TAKE_PTR(buf);
        return 0;
}
