/* libFuzzer target: a device's certificate (DER) and a scope thumbprint, as the plugin and the cloud send them */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "auth-cache/x509-check.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

/* Checked in every build, -DNDEBUG included. */
#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A real CA, so the chain check runs too (made once; random key, no file). */
static X509Trust *make_trust(void) {
        EVP_PKEY *k = EVP_EC_gen("P-256");
        X509 *c = X509_new();
        BIO *b = BIO_new(BIO_s_mem());
        X509Trust *t = NULL;
        char *pem, *error = NULL;
        long n;

        CHECK(k && c && b);
        X509_set_version(c, 2);
        X509_gmtime_adj(X509_getm_notBefore(c), -86400);
        X509_gmtime_adj(X509_getm_notAfter(c), 86400);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(c), "CN", MBSTRING_ASC, (const unsigned char *) "fuzz CA", -1,
                                   -1, 0);
        X509_set_issuer_name(c, X509_get_subject_name(c));
        X509_set_pubkey(c, k);
        CHECK(X509_sign(c, k, EVP_sha256()) > 0);
        CHECK(PEM_write_bio_X509(b, c) == 1);
        n = BIO_get_mem_data(b, &pem);
        CHECK(x509_trust_load_pem(pem, (size_t) n, &t, &error) == 0);
        free(error);
        BIO_free(b);
        X509_free(c);
        EVP_PKEY_free(k);
        return t;
}

/*
 * Input: one selector byte, a thumbprint text up to the first NUL, then the
 * certificate. Every outcome must be 0 or -EACCES with a reason; nothing is
 * accepted for a SAS identity.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static X509Trust *trust;
        _cleanup_(identity_freep) Identity *id = NULL;
        _cleanup_free_ char *thumb_text = NULL;
        const uint8_t *nul, *der;
        const char *reason = NULL;
        size_t der_len;
        int r;

        if (size < 1 || size > 64 * 1024)
                return 0;
        log_set_max_level(LOG_CRIT);
        if (!trust)
                trust = make_trust();

        nul = memchr(data + 1, 0, size - 1);
        if (!nul)
                return 0;
        thumb_text = strndup((const char *) data + 1, (size_t) (nul - data - 1));
        CHECK(thumb_text);
        der = nul + 1;
        der_len = size - (size_t) (der - data);

        CHECK(identity_new(&id, "fuzz-device", NULL) == 0);
        id->auth = (IdentityAuth) (data[0] % _IDENTITY_AUTH_MAX);
        r = x509_thumbprint_normalize(thumb_text, &id->primary_thumbprint);
        CHECK(r == 0 || r == -EINVAL);
        if (r == 0 && id->primary_thumbprint)
                CHECK(strlen(id->primary_thumbprint) == 40 || strlen(id->primary_thumbprint) == 64);

        /* A fixed time (2030-01-01) inside the committed seeds' validity, so runs repeat. */
        r = x509_check(id, der, der_len, (data[0] & 0x80) ? NULL : trust, 1893456000u, &reason);
        CHECK(r == 0 || (r == -EACCES && reason));
        if (id->auth == IDENTITY_AUTH_SAS)
                CHECK(r == -EACCES);
        return 0;
}
