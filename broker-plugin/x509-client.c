/* The TLS client certificate a device presented, as the plugin hands it to auth-cache */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/x509.h>

#include "broker-plugin/broker-api.h"
#include "broker-plugin/x509-client.h"

/* auth-cache refuses more (auth-cache/x509-check.h X509_CERT_MAX): don't ship it over the socket. */
#define CERT_DER_MAX 16384

static uint64_t not_after_of(const X509 *cert) {
        struct tm tm = {};
        time_t t;

        if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1)
                return 0;
        t = timegm(&tm);
        return t > 0 ? (uint64_t) t : 0;
}

int x509_client_der(const struct mosquitto *client, uint8_t **ret, size_t *ret_len, uint64_t *ret_not_after) {
        /* SSL_get_peer_certificate() inside: we own a reference. */
        X509 *cert = mosquitto_client_certificate(client);
        unsigned char *der = NULL;
        int n;

        *ret = NULL;
        *ret_len = 0;
        *ret_not_after = 0;
        if (!cert)
                return 0;
        *ret_not_after = not_after_of(cert);
        n = i2d_X509(cert, &der);
        X509_free(cert);
        if (n <= 0)
                return -ENOMEM;
        if (n > CERT_DER_MAX) {
                OPENSSL_free(der);
                return -E2BIG;
        }
        /* Callers free() it: copy out of OpenSSL's allocator. */
        *ret = malloc((size_t) n);
        if (*ret)
                memcpy(*ret, der, (size_t) n);
        OPENSSL_free(der);
        if (!*ret)
                return -ENOMEM;
        *ret_len = (size_t) n;
        return 0;
}
