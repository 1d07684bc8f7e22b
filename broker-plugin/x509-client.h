/* The TLS client certificate a device presented, as the plugin hands it to auth-cache */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct mosquitto;

/*
 * The DER of client's leaf certificate (mosquitto_client_certificate()),
 * or *ret = NULL, *ret_len = 0 when it presented none (every SAS device).
 * The broker's listener asks for one only with edgehub-tls-shim.so
 * preloaded (tls-shim.c). -E2BIG: larger than auth-cache reads.
 * Intermediates the device sent are not visible here (leaf only).
 * *ret_not_after: the certificate's notAfter in Unix seconds (0: none or
 * unreadable), when the connection it admits must end, as a token's se.
 */
int x509_client_der(const struct mosquitto *client, uint8_t **ret, size_t *ret_len, uint64_t *ret_not_after);
