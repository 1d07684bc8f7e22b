/* IoT Hub SAS tokens: parsed, verified and minted */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "proto/iothub/sas-token.h"
#include "proto/util/base64.h"
#include "proto/util/cleanup.h"
#include "proto/util/number.h"
#include "proto/util/url.h"

/*
 * What the SDKs sign (read in azure-iot-device 1.18.4, azure-iot-common
 * 1.13.3 and azure-c-shared-utility):
 *
 *  - Node (sak_authentication_provider.js _renewToken, then
 *    SharedAccessSignature.create): resource = host + "/devices/" + d
 *    [+ "/modules/" + m], NOT lower-cased, encoded with
 *    encodeUriComponentStrict() (encodeURIComponent plus !'()* as %21 %27
 *    %28 %29 %2a); that string is both sr= and what is signed:
 *    HMAC(key, sr + "\n" + se).
 *  - C (azure-c-shared-utility sastoken.c construct_sas_token): signs the
 *    scope its caller passes, already encoded by urlencode.c with lower-case
 *    hex ("%2f"), keeping !()*; it always appends "&skn=" (maybe empty).
 *
 * The two encodings of the same resource differ and IoT Hub accepts both,
 * because it (and edgeHub, SharedAccessSignature.ComputeSignature) signs the
 * encoded audience exactly as received. So do we: verification HMACs the raw
 * sr bytes; the audience check compares the url-decoded resource.
 * Tokens we mint use url_encode() (encodeURIComponent, upper-case hex).
 */

#define SAS_TOKEN_MAX 4096u
#define SAS_PREFIX "SharedAccessSignature "
#define HMAC_SHA256_LEN 32u

bool memeq_const(const void *a, size_t alen, const void *b, size_t blen) {
        if (alen != blen)
                return false;
        if (alen == 0)
                return true;
        return CRYPTO_memcmp(a, b, alen) == 0;
}

void sas_token_deinit(SasToken *t) {
        if (!t)
                return;
        free(t->resource);
        free(t->resource_encoded);
        free(t->signature);
        free(t->key_name);
        *t = SAS_TOKEN_NULL;
}

/* Canonical decimal only: the signed string carries se as sent, we re-print it from the number. */
static int parse_expiry(const char *s, size_t len, uint64_t *ret) {
        if (len > 1 && s[0] == '0')
                return -EINVAL;
        return parse_u64(s, len, ret) < 0 ? -EINVAL : 0;
}

typedef enum SasField {
        SAS_FIELD_SR,
        SAS_FIELD_SIG,
        SAS_FIELD_SE,
        SAS_FIELD_SKN,
        _SAS_FIELD_MAX,
} SasField;

static const char *const sas_field_names[_SAS_FIELD_MAX] = {
        [SAS_FIELD_SR] = "sr",
        [SAS_FIELD_SIG] = "sig",
        [SAS_FIELD_SE] = "se",
        [SAS_FIELD_SKN] = "skn",
};

int sas_token_parse(const char *s, size_t len, SasToken *ret) {
        const char *val[_SAS_FIELD_MAX] = {};
        size_t val_len[_SAS_FIELD_MAX] = {};
        const size_t plen = strlen(SAS_PREFIX);

        if (!s || !ret || len > SAS_TOKEN_MAX || len <= plen || memcmp(s, SAS_PREFIX, plen) != 0)
                return -EINVAL;

        const char *body = s + plen;
        size_t blen = len - plen;
        for (size_t i = 0; i < blen; i++)
                if (body[i] == 0 || body[i] == ' ' || body[i] == '\t' || body[i] == '\r' || body[i] == '\n')
                        return -EINVAL;

        /* Fields in any order; unknown ones are ignored (IoT Hub does), known ones only once. */
        for (size_t start = 0; start <= blen;) {
                const char *amp = memchr(body + start, '&', blen - start);
                size_t end = amp ? (size_t) (amp - body) : blen;
                const char *f = body + start;
                size_t flen = end - start;
                const char *eq = memchr(f, '=', flen);

                if (!eq || eq == f)
                        return -EINVAL;
                size_t klen = (size_t) (eq - f);
                for (size_t k = 0; k < _SAS_FIELD_MAX; k++) {
                        if (strlen(sas_field_names[k]) != klen || memcmp(f, sas_field_names[k], klen) != 0)
                                continue;
                        if (val[k])
                                return -EINVAL;
                        val[k] = eq + 1;
                        val_len[k] = flen - klen - 1;
                }
                start = end + 1;
        }

        if (!val[SAS_FIELD_SR] || val_len[SAS_FIELD_SR] == 0 || !val[SAS_FIELD_SIG] ||
            val_len[SAS_FIELD_SIG] == 0 || !val[SAS_FIELD_SE])
                return -EINVAL;

        uint64_t expiry;
        if (parse_expiry(val[SAS_FIELD_SE], val_len[SAS_FIELD_SE], &expiry) < 0)
                return -EINVAL;

        _cleanup_free_ char *resource = NULL, *signature = NULL, *key_name = NULL;
        int r = url_decode(val[SAS_FIELD_SR], val_len[SAS_FIELD_SR], &resource);
        if (r < 0)
                return r;
        r = url_decode(val[SAS_FIELD_SIG], val_len[SAS_FIELD_SIG], &signature);
        if (r < 0)
                return r;
        if (val[SAS_FIELD_SKN]) {
                /* The C SDK always sends "&skn=", empty for device keys. */
                r = url_decode(val[SAS_FIELD_SKN], val_len[SAS_FIELD_SKN], &key_name);
                if (r < 0)
                        return r;
        }
        _cleanup_free_ char *resource_encoded = strndup(val[SAS_FIELD_SR], val_len[SAS_FIELD_SR]);
        if (!resource_encoded)
                return -ENOMEM;

        *ret = (SasToken){
                .resource = TAKE_PTR(resource),
                .resource_encoded = TAKE_PTR(resource_encoded),
                .signature = TAKE_PTR(signature),
                .expiry = expiry,
                .key_name = TAKE_PTR(key_name),
        };
        return 0;
}

static bool audience_matches(const char *resource, const char *host, const char *device_id, const char *module_id) {
        size_t hlen = strlen(host);

        /* Host names are case-insensitive (DNS); ids are not. */
        if (hlen == 0 || strncasecmp(resource, host, hlen) != 0)
                return false;
        const char *p = resource + hlen;
        if (strncmp(p, "/devices/", 9) != 0)
                return false;
        p += 9;
        size_t dlen = strlen(device_id);
        if (strncmp(p, device_id, dlen) != 0)
                return false;
        p += dlen;
        if (!module_id)
                return *p == 0;
        if (strncmp(p, "/modules/", 9) != 0)
                return false;
        return strcmp(p + 9, module_id) == 0;
}

/* HMAC-SHA256 of "{sr}\n{se}" with a base64 key; -EINVAL if the key is not usable. */
static int sas_sign(const char *key_b64, const char *sr, uint64_t expiry, uint8_t mac[static HMAC_SHA256_LEN]) {
        _cleanup_free_ uint8_t *key = NULL;
        _cleanup_free_ char *msg = NULL;
        size_t key_len;
        unsigned mac_len = 0;

        if (base64_decode(key_b64, strlen(key_b64), &key, &key_len) < 0 || key_len == 0 || key_len > INT32_MAX)
                return -EINVAL;
        int n = asprintf(&msg, "%s\n%" PRIu64, sr, expiry);
        if (n < 0) {
                msg = NULL;
                return -ENOMEM;
        }
        if (!HMAC(EVP_sha256(), key, (int) key_len, (const unsigned char *) msg, (size_t) n, mac, &mac_len) ||
            mac_len != HMAC_SHA256_LEN) {
                OPENSSL_cleanse(key, key_len);
                return -EIO;
        }
        OPENSSL_cleanse(key, key_len);
        return 0;
}

int sas_token_verify(const SasToken *t, const char *const *hosts, size_t n_hosts,
                     const char *device_id, const char *module_id,
                     const char *const *keys, size_t n_keys, uint64_t now_sec) {
        bool audience_ok = false, signature_ok = false;

        if (!t || !t->resource || !t->signature || !device_id || (!hosts && n_hosts > 0) || (!keys && n_keys > 0))
                return -EINVAL;

        for (size_t i = 0; i < n_hosts && !audience_ok; i++)
                audience_ok = hosts[i] && audience_matches(t->resource, hosts[i], device_id, module_id);
        if (!audience_ok)
                return -EACCES;

        if (t->expiry < now_sec)
                return -EKEYEXPIRED;

        _cleanup_free_ uint8_t *sig = NULL;
        size_t sig_len;
        if (base64_decode(t->signature, strlen(t->signature), &sig, &sig_len) < 0 || sig_len != HMAC_SHA256_LEN)
                return -EKEYREJECTED;

        _cleanup_free_ char *sr_owned = NULL;
        const char *sr = t->resource_encoded;
        if (!sr) {
                /* A token built in memory rather than parsed: sign what we would send. */
                int r = url_encode(t->resource, strlen(t->resource), &sr_owned);
                if (r < 0)
                        return r;
                sr = sr_owned;
        }

        /* Every key is tried, no early exit: which key matched must not show in the timing. */
        for (size_t i = 0; i < n_keys; i++) {
                uint8_t mac[HMAC_SHA256_LEN];

                if (!keys[i] || sas_sign(keys[i], sr, t->expiry, mac) < 0)
                        continue;
                signature_ok |= memeq_const(mac, sizeof(mac), sig, sig_len);
                OPENSSL_cleanse(mac, sizeof(mac));
        }

        return signature_ok ? 0 : -EKEYREJECTED;
}

int sas_token_mint(const char *resource, const char *key_b64, uint64_t expiry, char **ret) {
        _cleanup_free_ char *sr = NULL, *sig_b64 = NULL, *sig = NULL, *token = NULL;
        uint8_t mac[HMAC_SHA256_LEN];
        int r;

        if (!resource || !*resource || !key_b64 || !ret)
                return -EINVAL;

        r = url_encode(resource, strlen(resource), &sr);
        if (r < 0)
                return r;
        r = sas_sign(key_b64, sr, expiry, mac);
        if (r < 0)
                return r;
        r = base64_encode(mac, sizeof(mac), &sig_b64);
        OPENSSL_cleanse(mac, sizeof(mac));
        if (r < 0)
                return r;
        r = url_encode(sig_b64, strlen(sig_b64), &sig);
        if (r < 0)
                return r;
        if (asprintf(&token, SAS_PREFIX "sr=%s&sig=%s&se=%" PRIu64, sr, sig, expiry) < 0) {
                token = NULL;
                return -ENOMEM;
        }

        *ret = TAKE_PTR(token);
        return 0;
}
