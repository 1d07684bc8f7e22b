/* The one TLS client context every upstream link shares */
#include <arpa/inet.h>
#include <errno.h>
#include <openssl/x509v3.h>
#include <stdbool.h>

#include "hub-store/link-tls.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

static bool is_ip_address(const char *host) {
        unsigned char buf[sizeof(struct in6_addr)];

        return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int link_tls_context_new(const char *ca_file, const char *host, SSL_CTX **ret) {
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        X509_VERIFY_PARAM *param;
        int ok;

        if (!ctx)
                return -ENOMEM;
        if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
                goto invalid;
        SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
        /* An idle link keeps no read and write buffers (~34 KiB each). */
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

        ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
                log_error("Cannot load the upstream CA certificates from %s", ca_file ? ca_file : "the system store");
                goto invalid;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);

        param = SSL_CTX_get0_param(ctx);
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        ok = is_ip_address(host) ? X509_VERIFY_PARAM_set1_ip_asc(param, host) : X509_VERIFY_PARAM_set1_host(param, host, 0);
        if (ok != 1)
                goto invalid;

        *ret = ctx;
        return 0;

invalid:
        SSL_CTX_free(ctx);
        return -EINVAL;
}
