/* Checking a device's CONNECT credentials against the device scope */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "auth-cache/scope.h"
#include "auth-cache/x509-check.h"

/*
 * A pure function over the in-memory scope, so every outcome is a table row
 * in test-auth-check.c. hosts[] are the names a device may address us by
 * (hub and gateway host names): both the username's host and the token's
 * audience must be one of them (case-insensitive).
 */
typedef struct AuthRequest {
        const char *client_id;
        const char *username;
        const void *password;  /* the SAS token bytes; may be NULL */
        size_t password_len;
        uint64_t max_lifetime_sec; /* a token's se at most this far after now_sec; 0 = no limit */
        const void *cert;      /* DER of the device's TLS client certificate; may be NULL */
        size_t cert_len;
        const X509Trust *trust; /* the CA bundle for certificateAuthority identities; may be NULL */
} AuthRequest;

/*
 * 0: accepted, *ret_identity is the scope's entry.
 * -ENOENT: the identity is not in scope.
 * -EACCES: refused; *ret_reason is a short text safe to log and to return
 *          ("malformed username", "unknown host", "client id mismatch",
 *          "missing password", "malformed password", "expired token",
 *          "token lifetime too long",
 *          "bad signature", "wrong audience", "disabled", "no certificate",
 *          or one of x509_check()'s reasons for an X.509 identity).
 * An X.509 identity is checked by its certificate only (a password is ignored);
 * a SAS identity by its token only (a certificate is ignored).
 * *ret_reason is set on every failure; nothing else is allocated.
 */
int auth_check(const Scope *scope, const char *const *hosts, size_t n_hosts,
               const AuthRequest *req, uint64_t now_sec,
               const Identity **ret_identity, const char **ret_reason);
