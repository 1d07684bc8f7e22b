/* Checking a device's CONNECT credentials against the device scope */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "auth-cache/scope.h"

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
} AuthRequest;

/*
 * 0: accepted, *ret_identity is the scope's entry.
 * -ENOENT: the identity is not in scope.
 * -EACCES: refused; *ret_reason is a short text safe to log and to return
 *          ("malformed username", "unknown host", "client id mismatch",
 *          "missing password", "malformed password", "expired token",
 *          "token lifetime too long",
 *          "bad signature", "wrong audience", "disabled").
 * *ret_reason is set on every failure; nothing else is allocated.
 */
int auth_check(const Scope *scope, const char *const *hosts, size_t n_hosts,
               const AuthRequest *req, uint64_t now_sec,
               const Identity **ret_identity, const char **ret_reason);
