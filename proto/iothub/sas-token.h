/* IoT Hub SAS tokens: parsed, verified and minted (the token format: proto/iothub/iot-identity.h) */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct SasToken {
        char *resource;  /* sr, url-decoded */
        char *resource_encoded; /* sr exactly as sent: the bytes the device signed */
        char *signature; /* sig, url-decoded base64 */
        uint64_t expiry; /* se, seconds since the epoch */
        char *key_name;  /* skn, NULL if absent */
} SasToken;

#define SAS_TOKEN_NULL ((SasToken){})

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

/* Constant-time equality of two buffers of equal length; false if lengths differ. */
bool memeq_const(const void *a, size_t alen, const void *b, size_t blen);
