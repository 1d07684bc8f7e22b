/* The one client of auth-cache: credential checks, keys, and whether an identity exists */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ipc/auth-client.h"
#include "proto/ipc/wire.h"
#include "proto/util/cleanup.h"

/* One request, one reply of reply_type; the transport's -ENOENT ("no socket") becomes -ECONNREFUSED. */
static int call(FrameClient *c, FrameBuilder *request, uint16_t reply_type, uint64_t timeout_usec, Frame *ret) {
        int r = frame_client_call(c, request, timeout_usec, ret);

        if (r < 0)
                return r == -ENOENT ? -ECONNREFUSED : r;
        if (ret->type != reply_type)
                return -EBADMSG;
        return 0;
}

/* A request that names one identity: the key and the identity queries. */
static int call_identity(FrameClient *c, uint16_t type, const char *identity, uint64_t timeout_usec, Frame *ret) {
        _cleanup_(frame_builder_deinit) FrameBuilder request = FRAME_BUILDER_NULL;

        frame_builder_init(&request, type);
        frame_builder_add_string(&request, WIRE_IDENTITY, identity);
        /* Every reply type is its request type + 1 (proto/ipc/wire.h). */
        return call(c, &request, (uint16_t) (type + 1), timeout_usec, ret);
}

int auth_client_check(FrameClient *c, uint64_t timeout_usec, const AuthCredentials *cred, int *ret_status,
                      char **ret_identity, char **ret_reason) {
        _cleanup_(frame_builder_deinit) FrameBuilder request = FRAME_BUILDER_NULL;
        _cleanup_free_ char *identity = NULL, *reason = NULL;
        Frame reply;
        int r;

        frame_builder_init(&request, WIRE_AUTH_REQUEST);
        frame_builder_add_string(&request, WIRE_CLIENT_ID, cred->client_id);
        frame_builder_add_string(&request, WIRE_USERNAME, cred->username);
        if (cred->password)
                frame_builder_add(&request, WIRE_PASSWORD, cred->password, strlen(cred->password));
        if (cred->certificate)
                frame_builder_add(&request, WIRE_CERTIFICATE, cred->certificate, cred->certificate_len);

        r = call(c, &request, WIRE_AUTH_REPLY, timeout_usec, &reply);
        if (r < 0)
                return r;

        if (ret_identity) {
                r = frame_get_string(&reply, WIRE_IDENTITY, &identity);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        /* The reason is for logs and messages only: a malformed one reads as none. */
        if (ret_reason)
                (void) frame_get_string(&reply, WIRE_ERROR, &reason);

        *ret_status = wire_reply_status(&reply);
        if (ret_identity)
                *ret_identity = TAKE_PTR(identity);
        if (ret_reason)
                *ret_reason = TAKE_PTR(reason);
        return 0;
}

int auth_client_key(FrameClient *c, uint64_t timeout_usec, const char *identity, int *ret_status, char **ret_key,
                    char **ret_signer) {
        Frame reply;
        int r;

        r = call_identity(c, WIRE_KEY_REQUEST, identity, timeout_usec, &reply);
        if (r < 0)
                return r;

        *ret_status = wire_reply_status(&reply);
        if (*ret_status < 0)
                return 0;

        const FrameField *f = frame_get(&reply, WIRE_KEY);
        if (!f) {
                if (!ret_signer)
                        return -EBADMSG;
                r = frame_get_string(&reply, WIRE_IDENTITY, ret_signer);
                if (r < 0)
                        return r == -ENOENT ? -EBADMSG : r;
                *ret_key = NULL;
                return 0;
        }
        r = frame_get_string(&reply, WIRE_KEY, ret_key);
        /* Keep the key in one place only: the reply buffer lives on in the client until the next call. */
        explicit_bzero((void *) f->data, f->len);
        if (r < 0)
                return r;
        if (ret_signer)
                *ret_signer = NULL;
        return 0;
}

int auth_client_identity(FrameClient *c, uint64_t timeout_usec, const char *identity, int *ret_status) {
        Frame reply;
        int r;

        r = call_identity(c, WIRE_IDENTITY_REQUEST, identity, timeout_usec, &reply);
        if (r < 0)
                return r;

        *ret_status = wire_reply_status(&reply);
        return 0;
}

void auth_key_freep(char **key) {
        if (!*key)
                return;
        explicit_bzero(*key, strlen(*key));
        free(*key);
        *key = NULL;
}
