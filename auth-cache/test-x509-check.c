/* Tests of the X.509 check: certificates made here with OpenSSL, one case per outcome */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "auth-cache/x509-check.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

#define NOW 1700000000u
#define DAY 86400

static EVP_PKEY *ec_key(void) {
        EVP_PKEY *k = EVP_EC_gen("P-256");
        assert_non_null(k);
        return k;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
        X509V3_CTX ctx;
        X509_EXTENSION *ext;

        X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        assert_non_null(ext);
        assert_int_equal(X509_add_ext(cert, ext, -1), 1);
        X509_EXTENSION_free(ext);
}

/* cn signed by issuer (NULL: self-signed), valid [NOW + from, NOW + to]. */
static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long from, long to,
                       bool ca, const char *eku) {
        X509 *c = X509_new();
        assert_non_null(c);
        assert_int_equal(X509_set_version(c, 2), 1);
        ASN1_INTEGER_set(X509_get_serialNumber(c), (long) (random() & 0x7fffffff));
        assert_non_null(X509_time_adj_ex(X509_getm_notBefore(c), 0, from, &(time_t){ NOW }));
        assert_non_null(X509_time_adj_ex(X509_getm_notAfter(c), 0, to, &(time_t){ NOW }));
        X509_NAME *name = X509_get_subject_name(c);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) cn, -1, -1, 0), 1);
        assert_int_equal(X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name), 1);
        assert_int_equal(X509_set_pubkey(c, key), 1);
        if (ca) {
                add_ext(c, issuer ? issuer : c, NID_basic_constraints, "critical,CA:TRUE");
                add_ext(c, issuer ? issuer : c, NID_key_usage, "critical,keyCertSign,cRLSign");
        }
        if (eku)
                add_ext(c, issuer ? issuer : c, NID_ext_key_usage, eku);
        assert_true(X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
        return c;
}

static size_t der_of(X509 *c, unsigned char **ret) {
        *ret = NULL;
        int n = i2d_X509(c, ret);
        assert_true(n > 0);
        return (size_t) n;
}

static char *thumbprint(const unsigned char *der, size_t len, const EVP_MD *md) {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned n;
        char *h = malloc(2 * EVP_MAX_MD_SIZE + 1);

        assert_int_equal(EVP_Digest(der, len, d, &n, md, NULL), 1);
        for (unsigned i = 0; i < n; i++)
                sprintf(h + 2 * i, "%02X", d[i]); /* upper case, as IoT Hub shows them */
        return h;
}

static Identity *self_signed_identity(const char *device, const char *primary, const char *secondary) {
        Identity *id = NULL;

        assert_int_equal(identity_new(&id, device, NULL), 0);
        id->auth = IDENTITY_AUTH_SELF_SIGNED;
        assert_true(x509_thumbprint_normalize(primary, &id->primary_thumbprint) >= 0);
        assert_true(x509_thumbprint_normalize(secondary, &id->secondary_thumbprint) >= 0);
        return id;
}

static void expect(const Identity *id, const unsigned char *der, size_t len, const X509Trust *trust, int want,
                   const char *reason) {
        const char *got = NULL;
        int r = x509_check(id, der, len, trust, NOW, &got);
        if (r != want || (reason && (!got || strcmp(got, reason) != 0)))
                fail_msg("'%s': got %d (%s), want %d (%s)", id->name, r, got ?: "-", want, reason ?: "-");
}

static void test_thumbprint_normalize(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;

        assert_int_equal(x509_thumbprint_normalize("0123456789ABCDEF0123456789abcdef01234567", &a), 0);
        assert_string_equal(a, "0123456789abcdef0123456789abcdef01234567");
        assert_int_equal(x509_thumbprint_normalize("", &b), 0);
        assert_null(b);
        assert_int_equal(x509_thumbprint_normalize(NULL, &c), 0);
        assert_null(c);
        assert_int_equal(x509_thumbprint_normalize("AB", &c), -EINVAL);
        assert_int_equal(x509_thumbprint_normalize("0123456789ABCDEF0123456789abcdef0123456g", &c), -EINVAL);
        assert_int_equal(x509_thumbprint_normalize("01:23:45:67:89:AB:CD:EF:01:23:45:67:89:ab:cd:ef:01:2", &c), -EINVAL);
}

static void test_self_signed(void **state) {
        _cleanup_free_ unsigned char *der = NULL, *old = NULL, *srv = NULL, *bad = NULL;
        _cleanup_free_ char *sha1 = NULL, *sha256 = NULL, *old1 = NULL, *bad1 = NULL;
        EVP_PKEY *k = ec_key();
        X509 *c = make_cert("dev-ss", k, NULL, NULL, -DAY, DAY, false, "clientAuth");
        X509 *expired = make_cert("dev-ss", k, NULL, NULL, -2 * DAY, -DAY, false, NULL);
        X509 *future = make_cert("dev-ss", k, NULL, NULL, DAY, 2 * DAY, false, NULL);
        X509 *server_only = make_cert("dev-ss", k, NULL, NULL, -DAY, DAY, false, "serverAuth");
        size_t len = der_of(c, &der), len_old, len_srv;

        sha1 = thumbprint(der, len, EVP_sha1());
        sha256 = thumbprint(der, len, EVP_sha256());

        Identity *primary1 = self_signed_identity("dev-ss", sha1, NULL);
        Identity *secondary256 = self_signed_identity("dev-ss", "00112233445566778899aabbccddeeff00112233", sha256);
        Identity *other = self_signed_identity("dev-ss", "00112233445566778899aabbccddeeff00112233", NULL);
        expect(primary1, der, len, NULL, 0, NULL);
        expect(secondary256, der, len, NULL, 0, NULL);
        /* After a sync replaced the thumbprint. */
        expect(other, der, len, NULL, -EACCES, "thumbprint mismatch");

        /* Dates are checked before the thumbprint: whatever the scope says. */
        len_old = der_of(expired, &old);
        old1 = thumbprint(old, len_old, EVP_sha1());
        Identity *exp_id = self_signed_identity("dev-ss", old1, NULL);
        expect(exp_id, old, len_old, NULL, -EACCES, "certificate expired");
        free(old);
        len_old = der_of(future, &old);
        expect(primary1, old, len_old, NULL, -EACCES, "certificate not yet valid");

        len_srv = der_of(server_only, &srv);
        expect(primary1, srv, len_srv, NULL, -EACCES, "key usage forbids client authentication");

        /* A signature that does not verify, registered by its own thumbprint. */
        bad = malloc(len);
        memcpy(bad, der, len);
        bad[len - 1] ^= 0x01;
        bad1 = thumbprint(bad, len, EVP_sha1());
        Identity *bad_id = self_signed_identity("dev-ss", bad1, NULL);
        expect(bad_id, bad, len, NULL, -EACCES, "bad self-signature");

        /* Garbage, truncation, trailing bytes, size. */
        expect(primary1, (const unsigned char *) "hello", 5, NULL, -EACCES, "malformed certificate");
        expect(primary1, der, len - 1, NULL, -EACCES, "malformed certificate");
        expect(primary1, NULL, 0, NULL, -EACCES, "malformed certificate");
        unsigned char *longer = calloc(1, X509_CERT_MAX + 1);
        memcpy(longer, der, len);
        expect(primary1, longer, len + 1, NULL, -EACCES, "malformed certificate");
        expect(primary1, longer, X509_CERT_MAX + 1, NULL, -EACCES, "certificate too large");
        free(longer);

        /* A SAS identity is never authenticated by a certificate. */
        Identity *sas = NULL;
        assert_int_equal(identity_new(&sas, "dev-ss", NULL), 0);
        expect(sas, der, len, NULL, -EACCES, "not an X.509 identity");

        identity_free(sas);
        identity_free(bad_id);
        identity_free(exp_id);
        identity_free(other);
        identity_free(secondary256);
        identity_free(primary1);
        X509_free(server_only);
        X509_free(future);
        X509_free(expired);
        X509_free(c);
        EVP_PKEY_free(k);
}

static void test_weak_key(void **state) {
        _cleanup_free_ unsigned char *der = NULL;
        _cleanup_free_ char *sha1 = NULL;
        EVP_PKEY *k = EVP_RSA_gen(1024);
        assert_non_null(k);
        X509 *c = make_cert("dev-rsa", k, NULL, NULL, -DAY, DAY, false, NULL);
        size_t len = der_of(c, &der);
        sha1 = thumbprint(der, len, EVP_sha1());
        Identity *id = self_signed_identity("dev-rsa", sha1, NULL);

        expect(id, der, len, NULL, -EACCES, "unsupported key");

        identity_free(id);
        X509_free(c);
        EVP_PKEY_free(k);
}

static char *pem_of(X509 *const *certs, size_t n, size_t *ret_len) {
        BIO *b = BIO_new(BIO_s_mem());
        char *data, *copy;
        long len;

        for (size_t i = 0; i < n; i++)
                assert_int_equal(PEM_write_bio_X509(b, certs[i]), 1);
        len = BIO_get_mem_data(b, &data);
        copy = malloc((size_t) len);
        memcpy(copy, data, (size_t) len);
        *ret_len = (size_t) len;
        BIO_free(b);
        return copy;
}

static void test_certificate_authority(void **state) {
        _cleanup_(x509_trust_freep) X509Trust *root_only = NULL, *with_inter = NULL, *other_trust = NULL;
        _cleanup_free_ unsigned char *leaf_der = NULL, *wrong_der = NULL, *deep_der = NULL, *stranger_der = NULL;
        _cleanup_free_ char *pem1 = NULL, *pem2 = NULL, *pem3 = NULL, *error = NULL;
        EVP_PKEY *root_k = ec_key(), *inter_k = ec_key(), *leaf_k = ec_key(), *other_k = ec_key();
        X509 *root = make_cert("root CA", root_k, NULL, NULL, -DAY, 10 * DAY, true, NULL);
        X509 *inter = make_cert("intermediate CA", inter_k, root, root_k, -DAY, 10 * DAY, true, NULL);
        X509 *other = make_cert("other CA", other_k, NULL, NULL, -DAY, 10 * DAY, true, NULL);
        X509 *leaf = make_cert("dev-ca", leaf_k, root, root_k, -DAY, DAY, false, "clientAuth");
        X509 *wrong_cn = make_cert("dev-other", leaf_k, root, root_k, -DAY, DAY, false, NULL);
        X509 *deep = make_cert("dev-ca", leaf_k, inter, inter_k, -DAY, DAY, false, NULL);
        X509 *stranger = make_cert("dev-ca", leaf_k, other, other_k, -DAY, DAY, false, NULL);
        size_t n1, n2, n3;
        size_t leaf_len = der_of(leaf, &leaf_der), wrong_len = der_of(wrong_cn, &wrong_der),
               deep_len = der_of(deep, &deep_der), stranger_len = der_of(stranger, &stranger_der);
        Identity *id = NULL;

        pem1 = pem_of(&root, 1, &n1);
        pem2 = pem_of((X509 *[]){ root, inter }, 2, &n2);
        pem3 = pem_of(&other, 1, &n3);
        assert_int_equal(x509_trust_load_pem(pem1, n1, &root_only, &error), 0);
        assert_int_equal(x509_trust_load_pem(pem2, n2, &with_inter, &error), 0);
        assert_int_equal(x509_trust_load_pem(pem3, n3, &other_trust, &error), 0);

        assert_int_equal(identity_new(&id, "dev-ca", NULL), 0);
        id->auth = IDENTITY_AUTH_CA;

        expect(id, leaf_der, leaf_len, root_only, 0, NULL);
        expect(id, leaf_der, leaf_len, with_inter, 0, NULL);
        expect(id, leaf_der, leaf_len, NULL, -EACCES, "no CA bundle configured");
        expect(id, leaf_der, leaf_len, other_trust, -EACCES, "untrusted certificate chain");
        expect(id, stranger_der, stranger_len, root_only, -EACCES, "untrusted certificate chain");
        /* A certificate for another device id. */
        expect(id, wrong_der, wrong_len, root_only, -EACCES, "common name is not the device id");
        /* Intermediates come from the bundle: the broker shows us the leaf only. */
        expect(id, deep_der, deep_len, root_only, -EACCES, "untrusted certificate chain");
        expect(id, deep_der, deep_len, with_inter, 0, NULL);

        identity_free(id);
        X509_free(stranger);
        X509_free(deep);
        X509_free(wrong_cn);
        X509_free(leaf);
        X509_free(other);
        X509_free(inter);
        X509_free(root);
        EVP_PKEY_free(other_k);
        EVP_PKEY_free(leaf_k);
        EVP_PKEY_free(inter_k);
        EVP_PKEY_free(root_k);
}

static void test_trust_load_errors(void **state) {
        _cleanup_(x509_trust_freep) X509Trust *t = NULL;
        _cleanup_free_ char *e1 = NULL, *e2 = NULL, *e3 = NULL;

        assert_int_equal(x509_trust_load_pem("not pem", 7, &t, &e1), -EBADMSG);
        assert_non_null(e1);
        const char *broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_int_equal(x509_trust_load_pem(broken, strlen(broken), &t, &e2), -EBADMSG);
        assert_int_equal(x509_trust_load_file("/nonexistent/ca.pem", &t, &e3), -ENOENT);
        assert_null(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_thumbprint_normalize),
                cmocka_unit_test(test_self_signed),
                cmocka_unit_test(test_weak_key),
                cmocka_unit_test(test_certificate_authority),
                cmocka_unit_test(test_trust_load_errors),
        };

        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
