/* The plugin's synchronous calls to auth-cache */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/ipc/client.h"

/*
 * Every call runs on the broker's only thread, so every call has a hard
 * deadline. After a call times out, that daemon is not asked again for as
 * long as the call waited (-EAGAIN at once): a hung daemon then costs the
 * broker at most about half its time instead of all of it.
 *
 * Return values: < 0 the call did not complete (-ENOENT/-ECONNREFUSED the
 * daemon is not running, -ETIMEDOUT, -EAGAIN backing off, -EBADMSG a bad
 * reply); 0 a reply arrived and *ret_status is its WIRE_STATUS as 0 or
 * -errno.
 */
typedef struct BackendPeer {
        FrameClient client;
        uint64_t timeout_usec;
        uint64_t quiet_until_usec; /* CLOCK_MONOTONIC; 0 = not backing off */
} BackendPeer;

typedef struct Backend {
        BackendPeer auth_cache;
} Backend;

#define BACKEND_NULL ((Backend){ .auth_cache.client = FRAME_CLIENT_NULL })

int backend_init(Backend *b, const char *auth_cache_path, uint64_t auth_timeout_usec);
void backend_deinit(Backend *b);

/* WIRE_AUTH_REQUEST. *ret_identity: the reply's IDENTITY if it carried one (to free), else NULL. */
int backend_auth(Backend *b, const char *client_id, const char *username, const char *password, int *ret_status,
                 char **ret_identity);
/* The same, with the DER of the device's TLS client certificate (WIRE_CERTIFICATE) when cert is set. */
int backend_auth_with_certificate(Backend *b, const char *client_id, const char *username, const char *password,
                                  const void *cert, size_t cert_len, int *ret_status, char **ret_identity);
