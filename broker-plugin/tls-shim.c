/* LD_PRELOAD shim for the broker: device listeners ask for an optional client certificate */
#include <dlfcn.h>
#include <stdbool.h>
#include <openssl/ssl.h>

/*
 * mosquitto 2.0.11 cannot ask for an optional client certificate: with
 * "require_certificate false" its net__load_certificates() (src/net.c) calls
 * SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, client_certificate_verify), so the
 * server never sends a CertificateRequest and an X.509 device's certificate
 * is never seen; with "true" every SAS device without a certificate fails the
 * handshake. One port for both kinds needs VERIFY_PEER without
 * FAIL_IF_NO_PEER_CERT, which no mosquitto option expresses.
 *
 * Loaded only into the broker (the systemd unit's Environment=LD_PRELOAD and
 * edgehub-run's mosquitto child), this wraps SSL_CTX_set_verify: when a
 * server context asks for VERIFY_NONE we set VERIFY_PEER and a callback that
 * accepts whatever the chain looks like. The handshake then carries the
 * device's certificate (or none) and never fails over it; the decision is the
 * plugin's, at CONNECT: it reads the leaf with mosquitto_client_certificate()
 * and auth-cache verifies it against the scope (thumbprints) and the
 * operator's CA bundle (chain, dates, key usage, CN). A certificate here is
 * never trusted by itself: an identity whose scope entry is SAS ignores it.
 *
 * A device's chain is parsed and walked in the handshake even though
 * nothing here trusts it: a chain over CHAIN_BYTES_MAX fails the handshake,
 * and the walk stops at CHAIN_DEPTH_MAX (auth-cache sees only the leaf).
 *
 * Client contexts (bridges) and contexts that already verify are left alone.
 * The cost for a SAS device is one CertificateRequest message in the
 * handshake, answered by an empty Certificate.
 */

#define CHAIN_BYTES_MAX (32L * 1024L) /* OpenSSL's default is 100 KiB */
#define CHAIN_DEPTH_MAX 8

typedef void (*SetVerifyFunc)(SSL_CTX *ctx, int mode, SSL_verify_cb cb);

/* Any certificate passes the handshake: auth-cache decides at CONNECT, with the identity known. */
static int accept_any(int preverify_ok, X509_STORE_CTX *ctx) {
        (void) preverify_ok;
        (void) ctx;
        return 1;
}

static bool ctx_is_server(const SSL_CTX *ctx) {
        const SSL_METHOD *m = SSL_CTX_get_ssl_method(ctx);

        /* mosquitto's listeners use TLS_server_method() (src/net.c net__tls_server_ctx()). */
        return m == TLS_server_method();
}

__attribute__((visibility("default"))) void SSL_CTX_set_verify(SSL_CTX *ctx, int mode, SSL_verify_cb cb) {
        static SetVerifyFunc real;

        if (!real)
                real = (SetVerifyFunc) dlsym(RTLD_NEXT, "SSL_CTX_set_verify");
        if (!real)
                return; /* cannot happen with libssl loaded; verifying nothing is mosquitto's own default */

        if (mode == SSL_VERIFY_NONE && ctx && ctx_is_server(ctx)) {
                real(ctx, SSL_VERIFY_PEER, accept_any);
                SSL_CTX_set_verify_depth(ctx, CHAIN_DEPTH_MAX);
                (void) SSL_CTX_set_max_cert_list(ctx, CHAIN_BYTES_MAX);
                return;
        }
        real(ctx, mode, cb);
}
