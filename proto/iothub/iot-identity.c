/* IoT Hub identities: device and module ids, MQTT usernames, "device/module" names */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/iot-identity.h"
#include "proto/util/cleanup.h"

#define USERNAME_MAX 4096u
#define HOST_MAX 255u

static bool iot_id_char_is_valid(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               (c != 0 && strchr("-.%_*?!(),:=@$'", c));
}

static bool iot_id_is_valid_n(const char *id, size_t len) {
        if (len == 0 || len > IOT_ID_MAX)
                return false;
        for (size_t i = 0; i < len; i++)
                if (!iot_id_char_is_valid(id[i]))
                        return false;
        return true;
}

bool iot_id_is_valid(const char *id) {
        return id && iot_id_is_valid_n(id, strnlen(id, IOT_ID_MAX + 1));
}

static bool host_is_valid_n(const char *h, size_t len) {
        if (len == 0 || len > HOST_MAX)
                return false;
        for (size_t i = 0; i < len; i++) {
                char c = h[i];
                if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '-' || c == '_'))
                        return false;
        }
        return true;
}

void iot_username_deinit(IotUsername *u) {
        if (!u)
                return;
        free(u->host);
        free(u->device_id);
        free(u->module_id);
        *u = IOT_USERNAME_NULL;
}

int iot_username_parse(const char *s, size_t len, IotUsername *ret) {
        /* host, device, module, one extra to detect too many */
        const char *seg[4];
        size_t seg_len[4], n = 0;

        if (!s || !ret || len > USERNAME_MAX || memchr(s, 0, len))
                return -EINVAL;

        /* The query (api-version, DeviceClientType, model-id) is not ours to judge. */
        const char *q = memchr(s, '?', len);
        size_t plen = q ? (size_t) (q - s) : len;

        for (size_t start = 0;;) {
                const char *slash = memchr(s + start, '/', plen - start);
                size_t end = slash ? (size_t) (slash - s) : plen;

                if (n == ELEMENTSOF(seg))
                        return -EINVAL;
                seg[n] = s + start;
                seg_len[n++] = end - start;
                if (!slash)
                        break;
                start = end + 1;
        }

        /* "hub/dev/?api-version=" ends in an empty segment; old SDKs sent "hub/dev/api-version=...". */
        if (n > 0 && (seg_len[n - 1] == 0 || (seg_len[n - 1] >= 12 && memcmp(seg[n - 1], "api-version=", 12) == 0)))
                n--;
        if (n < 2 || n > 3)
                return -EINVAL;
        if (!host_is_valid_n(seg[0], seg_len[0]) || !iot_id_is_valid_n(seg[1], seg_len[1]) ||
            (n == 3 && !iot_id_is_valid_n(seg[2], seg_len[2])))
                return -EINVAL;

        _cleanup_free_ char *host = strndup(seg[0], seg_len[0]);
        _cleanup_free_ char *device = strndup(seg[1], seg_len[1]);
        _cleanup_free_ char *module = n == 3 ? strndup(seg[2], seg_len[2]) : NULL;
        if (!host || !device || (n == 3 && !module))
                return -ENOMEM;

        *ret = (IotUsername){
                .host = TAKE_PTR(host),
                .device_id = TAKE_PTR(device),
                .module_id = TAKE_PTR(module),
        };
        return 0;
}

bool iot_identity_is_valid(const char *identity) {
        if (!identity)
                return false;
        const char *slash = strchr(identity, '/');
        size_t dlen = slash ? (size_t) (slash - identity) : strlen(identity);
        return iot_id_is_valid_n(identity, dlen) && (!slash || iot_id_is_valid(slash + 1));
}

int iot_identity_split(const char *identity, char **ret_device, char **ret_module) {
        if (!identity || !ret_device)
                return -EINVAL;

        const char *slash = strchr(identity, '/');
        size_t dlen = slash ? (size_t) (slash - identity) : strlen(identity);
        if (!iot_id_is_valid_n(identity, dlen))
                return -EINVAL;
        if (slash && (!ret_module || !iot_id_is_valid(slash + 1)))
                return -EINVAL;

        _cleanup_free_ char *device = strndup(identity, dlen);
        _cleanup_free_ char *module = slash ? strdup(slash + 1) : NULL;
        if (!device || (slash && !module))
                return -ENOMEM;

        *ret_device = TAKE_PTR(device);
        if (ret_module)
                *ret_module = TAKE_PTR(module);
        return 0;
}
