/* Parser of one page of IoT Hub's devicesAndModulesInDeviceScope reply */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "auth-cache/scope-page.h"
#include "auth-cache/x509-check.h"
#include "proto/iothub/iot-identity.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

/* A member that may be absent, null or a string. */
static int get_nullable_string(json_t *v, const char **ret) {
        if (!v || json_is_null(v)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return -EBADMSG;
        *ret = json_string_value(v);
        return 0;
}

/* A member that may be absent, null or an object; NULL for the first two. */
static int get_nullable_object(json_t *v, json_t **ret) {
        if (!v || json_is_null(v)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_object(v))
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int get_nullable_array(json_t *v, json_t **ret) {
        if (!v || json_is_null(v)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_array(v))
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int dup_key(const char *k, char **ret) {
        if (!k || !k[0]) {
                *ret = NULL;
                return 0;
        }
        *ret = strdup(k);
        return *ret ? 0 : -ENOMEM;
}

/* "x509Thumbprint": {"primaryThumbprint", "secondaryThumbprint"}: 1 with at least one, 0 none, <0 bad. */
static int parse_thumbprints(json_t *v, Identity *id, const char **ret_reason) {
        json_t *x509, *primary = NULL, *secondary = NULL;
        const char *pt, *st;
        int r;

        r = get_nullable_object(v, &x509);
        if (r < 0)
                return r;
        if (x509 && json_unpack(x509, "{s?o, s?o}", "primaryThumbprint", &primary,
                                "secondaryThumbprint", &secondary) < 0)
                return -EBADMSG;
        if (get_nullable_string(primary, &pt) < 0 || get_nullable_string(secondary, &st) < 0)
                return -EBADMSG;
        r = x509_thumbprint_normalize(pt, &id->primary_thumbprint);
        if (r == 0)
                r = x509_thumbprint_normalize(st, &id->secondary_thumbprint);
        if (r == -EINVAL) {
                *ret_reason = "a thumbprint is not 40 or 64 hex digits";
                return 0;
        }
        if (r < 0)
                return r;
        if (!id->primary_thumbprint && !id->secondary_thumbprint) {
                *ret_reason = "selfSigned without a thumbprint";
                return 0;
        }
        return 1;
}

/*
 * "authentication": {"type": "sas"|"selfSigned"|"certificateAuthority",
 * "symmetricKey": {"primaryKey", "secondaryKey"}, "x509Thumbprint": {...}}.
 * Returns 1 when the identity can authenticate (what it needs stored in id),
 * 0 to skip it (reason in *ret_reason), -EBADMSG on wrong types.
 */
static int parse_authentication(json_t *v, Identity *id, const char **ret_reason) {
        json_t *auth, *symmetric = NULL, *x509 = NULL, *primary = NULL, *secondary = NULL;
        const char *type, *pk, *sk;
        int r;

        r = get_nullable_object(v, &auth);
        if (r < 0)
                return r;
        if (!auth) {
                *ret_reason = "no authentication";
                return 0;
        }
        if (json_unpack(auth, "{s:s, s?o, s?o}", "type", &type, "symmetricKey", &symmetric,
                        "x509Thumbprint", &x509) < 0)
                return -EBADMSG;
        r = get_nullable_object(symmetric, &symmetric);
        if (r < 0)
                return r;
        if (symmetric && json_unpack(symmetric, "{s?o, s?o}",
                                     "primaryKey", &primary, "secondaryKey", &secondary) < 0)
                return -EBADMSG;
        if (get_nullable_string(primary, &pk) < 0 || get_nullable_string(secondary, &sk) < 0)
                return -EBADMSG;

        id->auth = identity_auth_from_string(type);
        switch (id->auth) {
        case IDENTITY_AUTH_SAS:
                break;
        case IDENTITY_AUTH_SELF_SIGNED:
                return parse_thumbprints(x509, id, ret_reason);
        case IDENTITY_AUTH_CA:
                /* The operator's CA bundle decides; nothing in the scope to keep. */
                return 1;
        default:
                *ret_reason = "authentication type is not sas, selfSigned or certificateAuthority";
                return 0;
        }
        if ((!pk || !pk[0]) && (!sk || !sk[0])) {
                *ret_reason = "no symmetric key";
                return 0;
        }
        r = dup_key(pk, &id->primary_key);
        if (r < 0)
                return r;
        r = dup_key(sk, &id->secondary_key);
        if (r < 0)
                return r;
        return 1;
}

static int parse_status(json_t *v, bool *ret_enabled) {
        const char *status;

        if (!json_is_string(v))
                return -EBADMSG;
        status = json_string_value(v);
        if (strcmp(status, "enabled") == 0)
                *ret_enabled = true;
        else if (strcmp(status, "disabled") == 0)
                *ret_enabled = false;
        else
                return -EBADMSG;
        return 0;
}

static int parse_device(json_t *v, const char *edge_device_id, Scope *page) {
        _cleanup_(identity_freep) Identity *id = NULL;
        json_t *status, *capabilities = NULL, *auth = NULL;
        const char *device_id, *reason = NULL;
        int iot_edge = 0, r;

        if (json_unpack(v, "{s:s, s:o, s?o, s?o}",
                        "deviceId", &device_id,
                        "status", &status,
                        "capabilities", &capabilities,
                        "authentication", &auth) < 0)
                return -EBADMSG;
        r = get_nullable_object(capabilities, &capabilities);
        if (r < 0)
                return r;
        if (capabilities && json_unpack(capabilities, "{s?b}", "iotEdge", &iot_edge) < 0)
                return -EBADMSG;

        r = identity_new(&id, device_id, NULL);
        if (r == -EINVAL) {
                log_warning("Device scope: skipping a device with an invalid id");
                return 0;
        }
        if (r < 0)
                return r;
        r = parse_status(status, &id->enabled);
        if (r < 0)
                return r;
        id->edge = iot_edge;

        /* Nested edge devices are not children we accept: they run their own edgeHub. */
        if (id->edge && strcmp(device_id, edge_device_id) != 0) {
                log_warning("Device scope: skipping device '%s', it is an edge device, not a child", id->name);
                return 0;
        }

        r = parse_authentication(auth, id, &reason);
        if (r < 0)
                return r;
        if (r == 0) {
                log_warning("Device scope: skipping device '%s', %s", id->name, reason);
                return 0;
        }
        return scope_add(page, &id);
}

static int parse_module(json_t *v, Scope *page) {
        _cleanup_(identity_freep) Identity *id = NULL;
        json_t *status = NULL, *auth = NULL;
        const char *device_id, *module_id, *reason = NULL;
        int r;

        if (json_unpack(v, "{s:s, s:s, s?o, s?o}",
                        "deviceId", &device_id,
                        "moduleId", &module_id,
                        "status", &status,
                        "authentication", &auth) < 0)
                return -EBADMSG;

        r = identity_new(&id, device_id, module_id);
        if (r == -EINVAL) {
                log_warning("Device scope: skipping a module with an invalid id");
                return 0;
        }
        if (r < 0)
                return r;
        /* IoT Hub's module twin carries no status; a module follows its device (scope_finalize). */
        if (status && !json_is_null(status)) {
                r = parse_status(status, &id->enabled);
                if (r < 0)
                        return r;
        }

        r = parse_authentication(auth, id, &reason);
        if (r < 0)
                return r;
        if (r == 0) {
                log_warning("Device scope: skipping module '%s', %s", id->name, reason);
                return 0;
        }
        return scope_add(page, &id);
}

/*
 * The link is appended to "https://host:port", so it must be a plain
 * absolute path: "//evil/..." would name another host, and control
 * characters or spaces would smuggle bytes into the request line.
 */
static bool continuation_link_is_valid(const char *link) {
        size_t n = strlen(link);

        if (n < 2 || n > SCOPE_LINK_MAX || link[0] != '/' || link[1] == '/' || link[1] == '\\')
                return false;
        for (size_t i = 0; i < n; i++)
                if (link[i] <= ' ' || link[i] >= 0x7f || link[i] == '#' || link[i] == '\\')
                        return false;
        return true;
}

int scope_page_parse(const void *buf, size_t len, const char *edge_device_id,
                     Scope **ret_page, char **ret_continuation) {
        json_auto_t *root = NULL;
        _cleanup_(scope_freep) Scope *page = NULL;
        _cleanup_free_ char *continuation = NULL;
        json_t *devices = NULL, *modules = NULL, *link = NULL, *v;
        const char *link_s;
        json_error_t error;
        size_t i;
        int r;

        if (len > SCOPE_PAGE_BYTES_MAX)
                return -EBADMSG;
        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &error);
        if (!root)
                return -EBADMSG;
        if (json_unpack(root, "{s?o, s?o, s?o}",
                        "devices", &devices,
                        "modules", &modules,
                        "continuationLink", &link) < 0)
                return -EBADMSG;
        if (get_nullable_array(devices, &devices) < 0 ||
            get_nullable_array(modules, &modules) < 0 ||
            get_nullable_string(link, &link_s) < 0)
                return -EBADMSG;

        if (link_s) {
                if (!continuation_link_is_valid(link_s))
                        return -EBADMSG;
                continuation = strdup(link_s);
                if (!continuation)
                        return -ENOMEM;
        }

        r = scope_new(&page);
        if (r < 0)
                return r;
        json_array_foreach(devices, i, v) {
                if (!json_is_object(v))
                        return -EBADMSG;
                r = parse_device(v, edge_device_id, page);
                if (r < 0)
                        return r;
        }
        json_array_foreach(modules, i, v) {
                if (!json_is_object(v))
                        return -EBADMSG;
                r = parse_module(v, page);
                if (r < 0)
                        return r;
        }

        *ret_page = TAKE_PTR(page);
        *ret_continuation = TAKE_PTR(continuation);
        return 0;
}
