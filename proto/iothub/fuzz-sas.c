/* Fuzz target: MQTT username, SAS token parse and verify, url-decode round trips */
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/iot-identity.h"
#include "proto/iothub/sas-token.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "proto/util/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KEY1 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const hosts[] = { "myhub.azure-devices.net", "edge-gw.local" };
        static const char *const keys[] = { NULL, KEY1, "not base64" };
        const char *s = (const char *) data;
        IotUsername u = IOT_USERNAME_NULL;
        SasToken t = SAS_TOKEN_NULL;

        log_set_max_level(LOG_CRIT);
        if (size > 8192)
                return 0;

        /* The same bytes as a username and as a password; the identity from one checks the other. */
        bool have_user = iot_username_parse(s, size, &u) >= 0;
        if (sas_token_parse(s, size, &t) >= 0) {
                (void) sas_token_verify(&t, hosts, ELEMENTSOF(hosts), have_user ? u.device_id : "dev-1",
                                        have_user ? u.module_id : NULL, keys, ELEMENTSOF(keys), 1700000000);
                (void) sas_token_verify(&t, hosts, ELEMENTSOF(hosts), "dev-1", "$edgeHub", keys, ELEMENTSOF(keys), 0);
        }
        sas_token_deinit(&t);

        /* decode(encode(decode(x))) == decode(x) */
        _cleanup_free_ char *d = NULL, *e = NULL, *d2 = NULL;
        if (url_decode(s, size, &d) >= 0) {
                if (url_encode(d, strlen(d), &e) < 0 || url_decode(e, strlen(e), &d2) < 0 || strcmp(d, d2) != 0)
                        abort();
                char *dev = NULL, *mod = NULL;
                /* The check without copies agrees with the split. */
                bool valid = iot_identity_is_valid(d);
                if (iot_identity_split(d, &dev, &mod) >= 0) {
                        if (!valid || !iot_id_is_valid(dev) || (mod && !iot_id_is_valid(mod)))
                                abort();
                        free(dev);
                        free(mod);
                } else if (valid)
                        abort();
        }
        if (have_user && (!iot_id_is_valid(u.device_id) || (u.module_id && !iot_id_is_valid(u.module_id))))
                abort();
        iot_username_deinit(&u);
        return 0;
}
