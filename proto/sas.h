/* IoT Hub credentials: MQTT usernames, SAS tokens, url-encoding, constant-time compare */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

typedef struct SasToken {
        char *resource;  /* sr, url-decoded */
        char *resource_encoded; /* sr exactly as sent: the bytes the device signed */
        char *signature; /* sig, url-decoded base64 */
        uint64_t expiry; /* se, seconds since the epoch */
        char *key_name;  /* skn, NULL if absent */
} SasToken;

#define SAS_TOKEN_NULL ((SasToken){})

/* -EINVAL on a malformed username; ids are checked with iot_id_is_valid(). */
int iot_username_parse(const char *s, size_t len, IotUsername *ret);
void iot_username_deinit(IotUsername *u);

/* Device and module ids: 1..128 chars of [A-Za-z0-9-.%_*?!(),:=@$'] (IoT Hub's set). */
bool iot_id_is_valid(const char *id);

/* "device" or "device/module" -> parts (a client id or an identity). -EINVAL if malformed. */
int iot_identity_split(const char *identity, char **ret_device, char **ret_module);

/* -EINVAL on a malformed token. */
int sas_token_parse(const char *s, size_t len, SasToken *ret);
void sas_token_deinit(SasToken *t);

/*
 * Checks the token is for "{host}/devices/{device}[/modules/{module}]" with
 * host one of hosts[] (case-insensitive), is not expired at now_sec, and is
 * signed with one of keys[] (base64; NULL entries skipped).
 * 0 = valid; -EACCES wrong audience; -EKEYEXPIRED expired; -EKEYREJECTED bad signature.
 */
int sas_token_verify(const SasToken *t, const char *const *hosts, size_t n_hosts,
                     const char *device_id, const char *module_id,
                     const char *const *keys, size_t n_keys, uint64_t now_sec);

/* A full "SharedAccessSignature sr=..&sig=..&se=.." for resource, signed with key_b64. */
int sas_token_mint(const char *resource, const char *key_b64, uint64_t expiry, char **ret);

/* Percent-encoding as the Azure SDKs do it (encodeURIComponent). */
int url_encode(const char *s, size_t len, char **ret);
/* -EINVAL on a bad %xx escape or an encoded NUL; '+' stays '+'. */
int url_decode(const char *s, size_t len, char **ret);

/* Constant-time equality of two buffers of equal length; false if lengths differ. */
bool memeq_const(const void *a, size_t alen, const void *b, size_t blen);
