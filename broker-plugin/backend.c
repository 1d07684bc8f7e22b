/* The plugin's synchronous calls to auth-cache and hub-store */
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

int backend_init(Backend *b, const char *auth_cache_path, uint64_t auth_timeout_usec, const char *hub_store_path,
                 uint64_t store_timeout_usec) {
        int r;

        *b = BACKEND_NULL;
        r = peer_init(&b->auth_cache, auth_cache_path, auth_timeout_usec);
        if (r >= 0)
                r = peer_init(&b->hub_store, hub_store_path, store_timeout_usec);
        if (r < 0)
                backend_deinit(b);
        return r;
}

void backend_deinit(Backend *b) {
        frame_client_deinit(&b->auth_cache.client);
        frame_client_deinit(&b->hub_store.client);
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

/* One request/reply within timeout_usec; on success *ret_reply points into the peer's client until its next call. */
static int peer_call(BackendPeer *peer, FrameBuilder *request, uint16_t reply_type, uint64_t timeout_usec,
                     Frame *ret_reply) {
        int r;

        r = peer_quiet(peer);
        if (r < 0)
                return r;
        r = frame_client_call(&peer->client, request, timeout_usec, ret_reply);
        peer_note(peer, r, timeout_usec);
        if (r < 0)
                return r;
        if (ret_reply->type != reply_type)
                return -EBADMSG;
        return 0;
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

int backend_presence(Backend *b, const char *identity, bool connected, int *ret_status) {
        _cleanup_(frame_builder_deinit) FrameBuilder request = FRAME_BUILDER_NULL;
        uint64_t timeout = b->hub_store.timeout_usec;
        Frame reply;
        int r;

        if (timeout > BACKEND_PRESENCE_TIMEOUT_USEC)
                timeout = BACKEND_PRESENCE_TIMEOUT_USEC;

        frame_builder_init(&request, WIRE_PRESENCE_REQUEST);
        frame_builder_add_string(&request, WIRE_IDENTITY, identity);
        frame_builder_add_u32(&request, WIRE_CONNECTED, connected ? 1 : 0);

        r = peer_call(&b->hub_store, &request, WIRE_PRESENCE_REPLY, timeout, &reply);
        if (r < 0)
                return r;

        *ret_status = wire_reply_status(&reply);
        return 0;
}
