/* Checking a device's X.509 certificate against its scope entry and the operator's CA bundle */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "auth-cache/scope.h"
#include "proto/util/cleanup.h"

/*
 * The one file of auth-cache that speaks OpenSSL's X.509 API. The broker
 * plugin hands us the DER of the leaf certificate the device presented in
 * its TLS handshake (mosquitto_client_certificate(); the handshake itself
 * proved the device holds the key). Everything in it is untrusted.
 *
 * Intermediates: mosquitto exposes only the leaf, so a certificateAuthority
 * device's intermediate CAs must be in the CA bundle next to the root.
 */

#define X509_CERT_MAX 16384u /* DER bytes; a leaf is ~0.5-2 KiB */

typedef struct X509Trust X509Trust;

/*
 * Loads a PEM bundle of CA certificates. -ENOENT/-EACCES: the file;
 * -EBADMSG: no certificate in it or a malformed one. *ret_error (to free)
 * says which, on failure.
 */
int x509_trust_load_pem(const void *pem, size_t len, X509Trust **ret, char **ret_error);
int x509_trust_load_file(const char *path, X509Trust **ret, char **ret_error);
X509Trust *x509_trust_free(X509Trust *t);

/*
 * An IoT Hub thumbprint (hex SHA-1 or SHA-256, either case) as lowercase hex.
 * NULL or "" gives *ret = NULL. -EINVAL: not 40 or 64 hex digits.
 */
int x509_thumbprint_normalize(const char *s, char **ret);

/*
 * 0: the certificate authenticates id (an X.509 identity) at now_sec.
 * -EACCES: refused; *ret_reason is a short text safe to log:
 *   "malformed certificate", "certificate too large", "certificate not yet valid",
 *   "certificate expired", "unsupported key", "key usage forbids client authentication",
 *   "thumbprint mismatch", "bad self-signature", "no CA bundle configured",
 *   "untrusted certificate chain", "common name is not the device id", "not an X.509 identity".
 * trust may be NULL (no bundle configured).
 */
int x509_check(const Identity *id, const void *der, size_t len, const X509Trust *trust, uint64_t now_sec,
               const char **ret_reason);

DEFINE_CLEANUP_FUNC(X509Trust, x509_trust_free);
