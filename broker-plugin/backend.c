/* The plugin's synchronous calls to auth-cache */
#include <errno.h>
#include <string.h>

#include "broker-plugin/backend.h"
#include "proto/ipc/auth-client.h"
#include "proto/ipc/wire.h"
#include "proto/util/cleanup.h"

static int peer_init(BackendPeer *peer, const char *path, uint64_t timeout_usec) {
        int r = frame_client_init(&peer->client, path);
        if (r < 0)
                return r;
        peer->timeout_usec = timeout_usec;
        peer->quiet_until_usec = 0;
        return 0;
}

int backend_init(Backend *b, const char *auth_cache_path, uint64_t auth_timeout_usec) {
        int r;

        *b = BACKEND_NULL;
        r = peer_init(&b->auth_cache, auth_cache_path, auth_timeout_usec);
        if (r < 0)
                backend_deinit(b);
        return r;
}

void backend_deinit(Backend *b) {
        frame_client_deinit(&b->auth_cache.client);
}

/* -EAGAIN while the peer is in its quiet period after a timeout: the broker's thread does not wait on it again. */
static int peer_quiet(BackendPeer *peer) {
        if (peer->quiet_until_usec != 0) {
                if (now_usec() < peer->quiet_until_usec)
                        return -EAGAIN;
                peer->quiet_until_usec = 0;
        }
        return 0;
}

static void peer_note(BackendPeer *peer, int r, uint64_t timeout_usec) {
        if (r == -ETIMEDOUT)
                peer->quiet_until_usec = now_usec() + timeout_usec;
}

int backend_auth(Backend *b, const char *client_id, const char *username, const char *password, int *ret_status,
                 char **ret_identity) {
        return backend_auth_with_certificate(b, client_id, username, password, NULL, 0, ret_status, ret_identity);
}

int backend_auth_with_certificate(Backend *b, const char *client_id, const char *username, const char *password,
                                  const void *cert, size_t cert_len, int *ret_status, char **ret_identity) {
        AuthCredentials cred = {
                .client_id = client_id,
                .username = username,
                .password = password, /* an X.509 device sends none */
                .certificate = cert,
                .certificate_len = cert_len,
        };
        int r;

        r = peer_quiet(&b->auth_cache);
        if (r < 0)
                return r;
        r = auth_client_check(&b->auth_cache.client, b->auth_cache.timeout_usec, &cred, ret_status, ret_identity,
                              NULL);
        peer_note(&b->auth_cache, r, b->auth_cache.timeout_usec);
        return r;
}
