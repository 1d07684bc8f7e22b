/* The one TLS client context every upstream link shares */
#pragma once

#include <openssl/ssl.h>

/*
 * libmosquitto gives each client its own SSL_CTX and parses the CA file into
 * it on every connect: with one link per identity that is ~47 KiB per link
 * (1,000 children: ~47 MiB). All links go to the same host with the same
 * trust, so one context serves them all; libmosquitto takes a reference per
 * client (MOSQ_OPT_SSL_CTX) and we configure it as libmosquitto's defaults
 * would: TLS 1.2 or newer, no compression, buffers released when idle, the
 * peer verified against ca_file (NULL: the system's CA store) and host (a
 * name or an IP address, as libmosquitto's own host name check allows).
 *
 * -EINVAL: the CA file cannot be loaded; -ENOMEM.
 */
int link_tls_context_new(const char *ca_file, const char *host, SSL_CTX **ret);
