/* Checking a device's CONNECT credentials against the device scope */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "auth-cache/auth-check.h"
#include "proto/iothub/iot-identity.h"
#include "proto/iothub/sas-token.h"
#include "proto/util/cleanup.h"

static bool host_is_ours(const char *host, const char *const *hosts, size_t n_hosts) {
        for (size_t i = 0; i < n_hosts; i++)
                if (hosts[i] && strcasecmp(host, hosts[i]) == 0)
                        return true;
        return false;
}

static bool client_id_matches(const char *client_id, const IotUsername *u) {
        size_t dlen = strlen(u->device_id);

        if (strncmp(client_id, u->device_id, dlen) != 0)
                return false;
        if (!u->module_id)
                return client_id[dlen] == '\0';
        return client_id[dlen] == '/' && strcmp(client_id + dlen + 1, u->module_id) == 0;
}

static const char *verify_reason(int r) {
        switch (r) {
        case -EKEYEXPIRED:
                return "expired token";
        case -EKEYREJECTED:
                return "bad signature";
        case -EACCES:
                return "wrong audience";
        default:
                return "token check failed";
        }
}

/* selfSigned and certificateAuthority identities: the TLS client certificate is the credential. */
static int check_certificate(const Identity *id, const AuthRequest *req, uint64_t now_sec, const char **ret_reason) {
        if (!req->cert || req->cert_len == 0) {
                *ret_reason = "no certificate";
                return -EACCES;
        }
        return x509_check(id, req->cert, req->cert_len, req->trust, now_sec, ret_reason);
}

int auth_check(const Scope *scope, const char *const *hosts, size_t n_hosts,
               const AuthRequest *req, uint64_t now_sec,
               const Identity **ret_identity, const char **ret_reason) {
        _cleanup_(iot_username_deinit) IotUsername u = IOT_USERNAME_NULL;
        _cleanup_(sas_token_deinit) SasToken token = SAS_TOKEN_NULL;
        const Identity *id;
        const char *name;
        int r;

        if (!req->username || iot_username_parse(req->username, strlen(req->username), &u) < 0) {
                *ret_reason = "malformed username";
                return -EACCES;
        }
        if (!host_is_ours(u.host, hosts, n_hosts)) {
                *ret_reason = "unknown host";
                return -EACCES;
        }
        if (!req->client_id || !client_id_matches(req->client_id, &u)) {
                *ret_reason = "client id mismatch";
                return -EACCES;
        }
        /* The client id now equals the identity name. */
        name = req->client_id;
        id = scope_find(scope, name);
        if (!id) {
                *ret_reason = "unknown identity";
                return -ENOENT;
        }

        if (id->auth != IDENTITY_AUTH_SAS) {
                r = check_certificate(id, req, now_sec, ret_reason);
                if (r < 0)
                        return r;
                if (!id->enabled) {
                        *ret_reason = "disabled";
                        return -EACCES;
                }
                *ret_identity = id;
                return 0;
        }

        if (!req->password || req->password_len == 0) {
                *ret_reason = "missing password";
                return -EACCES;
        }
        if (sas_token_parse(req->password, req->password_len, &token) < 0) {
                *ret_reason = "malformed password";
                return -EACCES;
        }
        const char *const keys[2] = { id->primary_key, id->secondary_key };
        r = sas_token_verify(&token, hosts, n_hosts, id->device_id, id->module_id, keys, 2, now_sec);
        if (r < 0) {
                *ret_reason = verify_reason(r);
                return -EACCES;
        }
        /*
         * IoT Hub closes a connection when its token expires (token-expiry.c
         * in the plugin does too), so a token that never expires would be a
         * key that survives every rotation: refuse what no sane client mints.
         */
        if (req->max_lifetime_sec > 0 && token.expiry > now_sec && token.expiry - now_sec > req->max_lifetime_sec) {
                *ret_reason = "token lifetime too long";
                return -EACCES;
        }
        /* Checked after the signature, so only a key holder learns the identity is disabled. */
        if (!id->enabled) {
                *ret_reason = "disabled";
                return -EACCES;
        }

        *ret_identity = id;
        return 0;
}
