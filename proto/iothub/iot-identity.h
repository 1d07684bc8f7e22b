/* IoT Hub identities: device and module ids, MQTT usernames, "device/module" names */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * The device protocol (DESIGN.md "Device-facing protocol"):
 *   username  {hub}/{device}[/{module}]/?api-version=...
 *   password  SharedAccessSignature sr={url-encoded resource}&sig={url-encoded base64}&se={expiry}[&skn=...]
 *   resource  {host}/devices/{device}[/modules/{module}]   host = hub or gateway name
 *   sig       base64(HMAC-SHA256(base64-decode(key), sr as sent + "\n" + se))
 *             (SDKs url-encode differently: Node "%2F", C "%2f"; IoT Hub signs sr as sent)
 * Everything here parses untrusted bytes (fuzz-sas.c).
 */
#define IOT_ID_MAX 128u

typedef struct IotUsername {
        char *host;      /* the {hub} part as the device sent it */
        char *device_id;
        char *module_id; /* NULL for a device */
} IotUsername;

#define IOT_USERNAME_NULL ((IotUsername){})

/* -EINVAL on a malformed username; ids are checked with iot_id_is_valid(). */
int iot_username_parse(const char *s, size_t len, IotUsername *ret);
void iot_username_deinit(IotUsername *u);

/* Device and module ids: 1..128 chars of [A-Za-z0-9-.%_*?!(),:=@$'] (IoT Hub's set). */
bool iot_id_is_valid(const char *id);

/* "device" or "device/module" -> parts (a client id or an identity). -EINVAL if malformed. */
int iot_identity_split(const char *identity, char **ret_device, char **ret_module);
/* What iot_identity_split() accepts, without the copies. */
bool iot_identity_is_valid(const char *identity);
