/* The one client of auth-cache: credential checks, keys, and whether an identity exists */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto/ipc/client.h"

/*
 * Every call asks auth-cache once over c and waits at most timeout_usec.
 * The return value speaks of the transport only: 0 when auth-cache
 * answered, -ECONNREFUSED when it is not running (the transport's -ENOENT
 * "no socket" would read as "no such identity"), -ETIMEDOUT, -EBADMSG for a
 * reply of the wrong type or without a status. Auth-cache's verdict is in
 * *ret_status: 0, or -ENOENT unknown, -EACCES refused or disabled, -EINVAL.
 * Callers keep their own policy on top (the plugin's quiet period after a
 * timeout, hub-store's retry delay).
 */

/* What a device presented at CONNECT (or a module with its SAS, as the HTTP API does). */
typedef struct AuthCredentials {
        const char *client_id;
        const char *username;
        const char *password;    /* NULL: none sent (X.509) */
        const void *certificate; /* DER of the TLS client certificate, or NULL */
        size_t certificate_len;
} AuthCredentials;

/*
 * Checks the credentials as a CONNECT. On *ret_status 0, *ret_identity
 * (optional) names the identity they prove; on refusal *ret_reason
 * (optional) is auth-cache's reason, if it gave one.
 */
int auth_client_check(FrameClient *c, uint64_t timeout_usec, const AuthCredentials *cred, int *ret_status,
                      char **ret_identity, char **ret_reason);

/*
 * The identity's key, to sign tokens with. On *ret_status 0 exactly one of
 * *ret_key and *ret_signer is set: an X.509 child has no key, and signer
 * names the identity whose key signs on its behalf. Without ret_signer such
 * a reply is -EBADMSG. The reply's copy of the key is zeroed before return;
 * the caller zeroes its own (auth_key_freep) when done.
 */
int auth_client_key(FrameClient *c, uint64_t timeout_usec, const char *identity, int *ret_status, char **ret_key,
                    char **ret_signer);

/* Whether identity is an enabled identity of the scope (*ret_status 0), without any key on the wire. */
int auth_client_identity(FrameClient *c, uint64_t timeout_usec, const char *identity, int *ret_status);

/* Zeroes and frees a key string; for _cleanup_(auth_key_freep). */
void auth_key_freep(char **key);
