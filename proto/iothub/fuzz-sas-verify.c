/* Fuzz target: SAS verification past the signature (the audience match), and strict base64 round trips */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/sas-token.h"
#include "proto/runtime/log.h"
#include "proto/util/base64.h"
#include "proto/util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KEY1 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define NOW 1700000000u

/*
 * fuzz-sas.c rarely gets past the signature: here the input is the token's
 * resource (its audience and identity path), signed with a key we know, so
 * every input reaches the audience and identity checks. The same bytes are
 * also base64 decoded: decode(encode(decode(x))) == decode(x), and the
 * encoding has x's length. (x itself may differ in the unused low bits of
 * its last character: RFC 4648 §3.5 lets a decoder accept those.)
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const hosts[] = { "myhub.azure-devices.net", "edge-gw.local" };
        static const char *const keys[] = { KEY1 };
        _cleanup_free_ char *resource = NULL, *token = NULL, *encoded = NULL;
        _cleanup_free_ uint8_t *decoded = NULL, *again = NULL;
        SasToken t = SAS_TOKEN_NULL;
        size_t n, n2;

        log_set_max_level(LOG_CRIT);
        if (size > 4096)
                return 0;

        resource = strndup((const char *) data, size);
        if (!resource)
                return 0;
        if (sas_token_mint(resource, KEY1, NOW + 60, &token) >= 0 && sas_token_parse(token, strlen(token), &t) >= 0) {
                int r1 = sas_token_verify(&t, hosts, ELEMENTSOF(hosts), "dev-1", NULL, keys, 1, NOW);
                int r2 = sas_token_verify(&t, hosts, ELEMENTSOF(hosts), "dev-1", "mod", keys, 1, NOW);
                /* One resource names one identity: never both the device and its module. */
                if (r1 == 0 && r2 == 0)
                        abort();
                /* A token we signed fails only on its audience or identity, and is expired later. */
                if ((r1 < 0 && r1 != -EACCES) || (r2 < 0 && r2 != -EACCES))
                        abort();
                if (sas_token_verify(&t, hosts, ELEMENTSOF(hosts), "dev-1", NULL, keys, 1, NOW + 61) == 0)
                        abort();
        }
        sas_token_deinit(&t);

        if (base64_decode((const char *) data, size, &decoded, &n) >= 0) {
                if (base64_encode(decoded, n, &encoded) < 0 || strlen(encoded) != size)
                        abort();
                if (base64_decode(encoded, size, &again, &n2) < 0 || n2 != n || memcmp(again, decoded, n) != 0)
                        abort();
        }
        return 0;
}
