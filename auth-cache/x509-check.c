/* Checking a device's X.509 certificate against its scope entry and the operator's CA bundle */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "auth-cache/x509-check.h"
#include "proto/util/cleanup.h"

#define BUNDLE_MAX (4u * 1024u * 1024u)
#define RSA_BITS_MIN 2048
#define EC_BITS_MIN 256

struct X509Trust {
        X509_STORE *store;
};

DEFINE_CLEANUP_FUNC(X509, X509_free);
DEFINE_CLEANUP_FUNC(BIO, BIO_free);
DEFINE_CLEANUP_FUNC(X509_STORE_CTX, X509_STORE_CTX_free);

static void info_stack_free(STACK_OF(X509_INFO) **s) {
        if (*s)
                sk_X509_INFO_pop_free(*s, X509_INFO_free);
}

static int fail(char **ret_error, int r, const char *what) {
        ERR_clear_error();
        *ret_error = strdup(what);
        return r;
}

int x509_trust_load_pem(const void *pem, size_t len, X509Trust **ret, char **ret_error) {
        _cleanup_(BIO_freep) BIO *bio = NULL;
        _cleanup_(info_stack_free) STACK_OF(X509_INFO) *infos = NULL;
        X509Trust *t;
        int n = 0;

        *ret_error = NULL;
        if (len > BUNDLE_MAX)
                return fail(ret_error, -EBADMSG, "larger than 4 MiB");
        bio = BIO_new_mem_buf(pem, (int) len);
        if (!bio)
                return -ENOMEM;
        infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
        if (!infos)
                return fail(ret_error, -EBADMSG, "not a PEM certificate bundle");

        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->store = X509_STORE_new();
        if (!t->store) {
                x509_trust_free(t);
                return -ENOMEM;
        }
        for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
                X509_INFO *info = sk_X509_INFO_value(infos, i);
                if (!info->x509)
                        continue;
                if (X509_STORE_add_cert(t->store, info->x509) != 1) {
                        x509_trust_free(t);
                        return fail(ret_error, -EBADMSG, "a certificate could not be added");
                }
                n++;
        }
        if (n == 0) {
                x509_trust_free(t);
                return fail(ret_error, -EBADMSG, "no certificate in it");
        }
        *ret = t;
        return 0;
}

int x509_trust_load_file(const char *path, X509Trust **ret, char **ret_error) {
        _cleanup_free_ char *buf = NULL;
        FILE *f;
        size_t n;
        int r;

        *ret_error = NULL;
        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                return fail(ret_error, r, strerror(-r));
        }
        buf = malloc(BUNDLE_MAX + 1);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        n = fread(buf, 1, BUNDLE_MAX + 1, f);
        r = ferror(f) ? -EIO : 0;
        fclose(f);
        if (r < 0)
                return fail(ret_error, r, "read error");
        return x509_trust_load_pem(buf, n, ret, ret_error);
}

X509Trust *x509_trust_free(X509Trust *t) {
        if (!t)
                return NULL;
        X509_STORE_free(t->store);
        free(t);
        return NULL;
}

int x509_thumbprint_normalize(const char *s, char **ret) {
        size_t n;
        char *out;

        if (!s || !*s) {
                *ret = NULL;
                return 0;
        }
        n = strlen(s);
        if (n != 40 && n != 64)
                return -EINVAL;
        out = malloc(n + 1);
        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int d = OPENSSL_hexchar2int((unsigned char) s[i]);
                if (d < 0) {
                        free(out);
                        return -EINVAL;
                }
                out[i] = "0123456789abcdef"[d];
        }
        out[n] = '\0';
        *ret = out;
        return 0;
}

static void hex(const unsigned char *d, unsigned n, char *out) {
        for (unsigned i = 0; i < n; i++) {
                out[2 * i] = "0123456789abcdef"[d[i] >> 4];
                out[2 * i + 1] = "0123456789abcdef"[d[i] & 0xf];
        }
        out[2 * n] = '\0';
}

/* The thumbprint IoT Hub would store for cert with the digest its length names. */
static bool thumbprint_matches(X509 *cert, const char *want) {
        unsigned char d[EVP_MAX_MD_SIZE];
        char h[2 * EVP_MAX_MD_SIZE + 1];
        const EVP_MD *md;
        unsigned n = 0;

        if (!want)
                return false;
        md = strlen(want) == 40 ? EVP_sha1() : EVP_sha256();
        if (X509_digest(cert, md, d, &n) != 1)
                return false;
        hex(d, n, h);
        return strcmp(h, want) == 0;
}

static bool key_is_supported(X509 *cert) {
        EVP_PKEY *k = X509_get0_pubkey(cert);

        if (!k)
                return false;
        switch (EVP_PKEY_get_base_id(k)) {
        case EVP_PKEY_RSA:
                return EVP_PKEY_get_bits(k) >= RSA_BITS_MIN;
        case EVP_PKEY_EC:
                return EVP_PKEY_get_bits(k) >= EC_BITS_MIN;
        default:
                return false;
        }
}

/* Exactly one CN, byte-equal to the device id (IoT Hub's rule for CA-signed devices). */
static bool cn_is(X509 *cert, const char *device_id) {
        const X509_NAME *subject = X509_get_subject_name(cert);
        int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
        const ASN1_STRING *cn;

        if (i < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, i) >= 0)
                return false;
        cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
        return cn && (size_t) ASN1_STRING_length(cn) == strlen(device_id) &&
               memcmp(ASN1_STRING_get0_data(cn), device_id, strlen(device_id)) == 0;
}

static int check_chain(X509 *cert, const X509Trust *trust, time_t now, const char **ret_reason) {
        _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = X509_STORE_CTX_new();

        if (!ctx)
                return -ENOMEM;
        if (X509_STORE_CTX_init(ctx, trust->store, cert, NULL) != 1)
                return -ENOMEM;
        X509_STORE_CTX_set_time(ctx, 0, now);
        (void) X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
        if (X509_verify_cert(ctx) != 1) {
                *ret_reason = "untrusted certificate chain";
                return -EACCES;
        }
        return 0;
}

static int refuse(const char **ret_reason, const char *reason) {
        ERR_clear_error();
        *ret_reason = reason;
        return -EACCES;
}

int x509_check(const Identity *id, const void *der, size_t len, const X509Trust *trust, uint64_t now_sec,
               const char **ret_reason) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        const unsigned char *p = der;
        time_t now = (time_t) now_sec;
        int r;

        if (id->auth != IDENTITY_AUTH_SELF_SIGNED && id->auth != IDENTITY_AUTH_CA)
                return refuse(ret_reason, "not an X.509 identity");
        if (len > X509_CERT_MAX)
                return refuse(ret_reason, "certificate too large");
        if (!der || len == 0)
                return refuse(ret_reason, "malformed certificate");
        cert = d2i_X509(NULL, &p, (long) len);
        if (!cert || p != (const unsigned char *) der + len)
                return refuse(ret_reason, "malformed certificate");

        r = X509_cmp_time(X509_get0_notBefore(cert), &now);
        if (r == 0)
                return refuse(ret_reason, "malformed certificate");
        if (r > 0)
                return refuse(ret_reason, "certificate not yet valid");
        r = X509_cmp_time(X509_get0_notAfter(cert), &now);
        if (r == 0)
                return refuse(ret_reason, "malformed certificate");
        if (r < 0)
                return refuse(ret_reason, "certificate expired");
        if (!key_is_supported(cert))
                return refuse(ret_reason, "unsupported key");
        /* keyUsage and extendedKeyUsage, where present, must allow a TLS client. */
        if (X509_check_purpose(cert, X509_PURPOSE_SSL_CLIENT, 0) != 1)
                return refuse(ret_reason, "key usage forbids client authentication");

        if (id->auth == IDENTITY_AUTH_SELF_SIGNED) {
                if (!thumbprint_matches(cert, id->primary_thumbprint) &&
                    !thumbprint_matches(cert, id->secondary_thumbprint))
                        return refuse(ret_reason, "thumbprint mismatch");
                /* The thumbprint covers the signature; a self-issued one must also verify. */
                if (X509_check_issued(cert, cert) == X509_V_OK && X509_verify(cert, X509_get0_pubkey(cert)) != 1)
                        return refuse(ret_reason, "bad self-signature");
                ERR_clear_error();
                return 0;
        }

        if (!trust)
                return refuse(ret_reason, "no CA bundle configured");
        r = check_chain(cert, trust, now, ret_reason);
        ERR_clear_error();
        if (r < 0)
                return r;
        if (!cn_is(cert, id->device_id))
                return refuse(ret_reason, "common name is not the device id");
        return 0;
}
