/* Unit tests: IoT Hub usernames, SAS tokens, url-encoding */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/iothub/iot-identity.h"
#include "proto/iothub/sas-token.h"
#include "proto/util/cleanup.h"
#include "proto/util/url.h"

/*
 * Known answers from the real SDKs (node 20, azure-iot-device 1.18.4,
 * azure-iot-common 1.13.3):
 *   key1 = bytes 0..31, key2 = bytes 255..224.
 *   NODE_DEV:    azure-iot-device SharedAccessSignature.create("myhub.azure-devices.net", "dev-1", key1, 1700000000)
 *   NODE_DEV2:   the same with key2
 *   NODE_MOD:    SharedAccessSignature.create(encodeUriComponentStrict("edge-gw.local/devices/dev-1/modules/$edgeHub"),
 *                undefined, key1, 4102444800) as sak_authentication_provider does for a module
 *   NODE_STRICT: device "d(1)*!'": the Node SDK encodes !'()* too, "*" as lower-case "%2a"
 *   C_SDK:       what azure-c-shared-utility sastoken.c sends: lower-case "%2f", trailing empty "&skn="
 */
#define KEY1 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define KEY2 "//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA="
#define KEY3 "c2VjcmV0LWtleS10aGF0LWlzLW5vdC1rZXkxLW9yLTI="
#define HUB "myhub.azure-devices.net"
#define GATEWAY "edge-gw.local"
#define NODE_DEV                                                                                                  \
        "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev-1&sig=9P9k7cepgTkOaGmNEjd4wFkh7fOk6kxqmqAk7l" \
        "hd9T8%3D&se=1700000000"
#define NODE_DEV2                                                                                                 \
        "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev-1&sig=C%2BYbbG3T20TaaoMCbOZBzJen6MCo0JVl6Zj" \
        "7SsUeef0%3D&se=1700000000"
#define NODE_MOD                                                                                                    \
        "SharedAccessSignature sr=edge-gw.local%2Fdevices%2Fdev-1%2Fmodules%2F%24edgeHub&sig=KguJBsbcnPoCbv2qXJ2H0BDA8" \
        "ys29ba43%2BDPbpw27o8%3D&se=4102444800"
#define NODE_STRICT                                                                                                \
        "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fd%281%29%2a%21%27&sig=tbe1Oy7tLzG%2BAS%2Bsz2WFZ" \
        "keQgkC0oOW1TmABxbiWGwY%3D&se=1700000000"
#define C_SDK                                                                                                     \
        "SharedAccessSignature sr=myhub.azure-devices.net%2fdevices%2fdev-1&sig=apV%2BJFBzBNACqko6wppdh%2BYYW6CWqZQVQp" \
        "eDTJLx2A0%3D&se=1700000000&skn="

#define NOW UINT64_C(1699990000)

static int verify_str(const char *token, const char *const *hosts, size_t n_hosts, const char *device,
                      const char *module, const char *const *keys, size_t n_keys, uint64_t now) {
        SasToken t = SAS_TOKEN_NULL;
        int r = sas_token_parse(token, strlen(token), &t);
        if (r < 0)
                return r;
        r = sas_token_verify(&t, hosts, n_hosts, device, module, keys, n_keys, now);
        sas_token_deinit(&t);
        return r;
}

static void test_verify_table(void **state) {
        static const char *const hub[] = { HUB };
        static const char *const both[] = { HUB, GATEWAY };
        static const char *const gw_upper[] = { "EDGE-GW.LOCAL" };
        static const char *const k1[] = { KEY1 };
        static const char *const k2[] = { KEY2 };
        static const char *const k12[] = { KEY1, KEY2 };
        static const char *const k21[] = { KEY2, KEY1 };
        static const char *const k_null1[] = { NULL, KEY1 };
        static const char *const k3[] = { KEY3, NULL };
        static const char *const k_bad1[] = { "not base64!", KEY1 };
        static const struct {
                const char *name, *token;
                const char *const *hosts;
                size_t n_hosts;
                const char *device, *module;
                const char *const *keys;
                size_t n_keys;
                uint64_t now;
                int expect;
        } cases[] = {
                { "node device, primary", NODE_DEV, hub, 1, "dev-1", NULL, k12, 2, NOW, 0 },
                { "node device, primary only", NODE_DEV, hub, 1, "dev-1", NULL, k1, 1, NOW, 0 },
                { "node device, secondary key", NODE_DEV2, hub, 1, "dev-1", NULL, k12, 2, NOW, 0 },
                { "secondary key first", NODE_DEV, hub, 1, "dev-1", NULL, k21, 2, NOW, 0 },
                { "NULL key skipped", NODE_DEV, hub, 1, "dev-1", NULL, k_null1, 2, NOW, 0 },
                { "unusable key skipped", NODE_DEV, hub, 1, "dev-1", NULL, k_bad1, 2, NOW, 0 },
                { "wrong key", NODE_DEV, hub, 1, "dev-1", NULL, k2, 1, NOW, -EKEYREJECTED },
                { "other key", NODE_DEV, hub, 1, "dev-1", NULL, k3, 2, NOW, -EKEYREJECTED },
                { "no keys", NODE_DEV, hub, 1, "dev-1", NULL, NULL, 0, NOW, -EKEYREJECTED },
                { "expired", NODE_DEV, hub, 1, "dev-1", NULL, k1, 1, UINT64_C(1700000001), -EKEYEXPIRED },
                { "expires this second", NODE_DEV, hub, 1, "dev-1", NULL, k1, 1, UINT64_C(1700000000), 0 },
                { "wrong device", NODE_DEV, hub, 1, "dev-2", NULL, k1, 1, NOW, -EACCES },
                { "device id is case-sensitive", NODE_DEV, hub, 1, "DEV-1", NULL, k1, 1, NOW, -EACCES },
                { "device token for a module", NODE_DEV, hub, 1, "dev-1", "m", k1, 1, NOW, -EACCES },
                { "wrong audience host", NODE_DEV, both + 1, 1, "dev-1", NULL, k1, 1, NOW, -EACCES },
                { "no hosts", NODE_DEV, NULL, 0, "dev-1", NULL, k1, 1, NOW, -EACCES },
                { "gateway-host audience, module", NODE_MOD, both, 2, "dev-1", "$edgeHub", k1, 1, NOW, 0 },
                { "host case-insensitive", NODE_MOD, gw_upper, 1, "dev-1", "$edgeHub", k1, 1, NOW, 0 },
                { "module token, wrong module", NODE_MOD, both, 2, "dev-1", "$edgeAgent", k1, 1, NOW, -EACCES },
                { "module token as device", NODE_MOD, both, 2, "dev-1", NULL, k1, 1, NOW, -EACCES },
                { "module token, hub only", NODE_MOD, hub, 1, "dev-1", "$edgeHub", k1, 1, NOW, -EACCES },
                { "node strict encoding", NODE_STRICT, hub, 1, "d(1)*!'", NULL, k1, 1, NOW, 0 },
                { "C SDK lower-case escapes", C_SDK, hub, 1, "dev-1", NULL, k12, 2, NOW, 0 },
                { "C SDK, wrong key", C_SDK, hub, 1, "dev-1", NULL, k2, 1, NOW, -EKEYREJECTED },
                { "fields reordered", "SharedAccessSignature se=1700000000&sig=9P9k7cepgTkOaGmNEjd4wFkh7fOk6kxqmqAk7lhd9T8%3D&"
                                      "sr=myhub.azure-devices.net%2Fdevices%2Fdev-1",
                  hub, 1, "dev-1", NULL, k1, 1, NOW, 0 },
                { "signed se differs", "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev-1&sig=9P9k7cepgTkOaGmNEjd4"
                                       "wFkh7fOk6kxqmqAk7lhd9T8%3D&se=1700000001",
                  hub, 1, "dev-1", NULL, k1, 1, NOW, -EKEYREJECTED },
                { "sr re-encoded differs", "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev%2D1&sig=9P9k7cepgTkOa"
                                           "GmNEjd4wFkh7fOk6kxqmqAk7lhd9T8%3D&se=1700000000",
                  hub, 1, "dev-1", NULL, k1, 1, NOW, -EKEYREJECTED },
                { "truncated signature", "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev-1&sig=9P9k7cepgTkOaGm"
                                         "NEjd4wFkh7fOk6kxqmqAk7lhd9T8&se=1700000000",
                  hub, 1, "dev-1", NULL, k1, 1, NOW, -EKEYREJECTED },
                { "signature not base64", "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev-1&sig=****&se=17000"
                                          "00000",
                  hub, 1, "dev-1", NULL, k1, 1, NOW, -EKEYREJECTED },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = verify_str(cases[i].token, cases[i].hosts, cases[i].n_hosts, cases[i].device, cases[i].module,
                                   cases[i].keys, cases[i].n_keys, cases[i].now);
                if (r != cases[i].expect)
                        fail_msg("case '%s': got %d, want %d", cases[i].name, r, cases[i].expect);
        }
}

static void test_parse_fields(void **state) {
        SasToken t = SAS_TOKEN_NULL;

        assert_int_equal(sas_token_parse(C_SDK, strlen(C_SDK), &t), 0);
        assert_string_equal(t.resource, "myhub.azure-devices.net/devices/dev-1");
        assert_string_equal(t.resource_encoded, "myhub.azure-devices.net%2fdevices%2fdev-1");
        assert_string_equal(t.signature, "apV+JFBzBNACqko6wppdh+YYW6CWqZQVQpeDTJLx2A0=");
        assert_true(t.expiry == UINT64_C(1700000000));
        assert_non_null(t.key_name);
        assert_string_equal(t.key_name, "");
        sas_token_deinit(&t);
        assert_null(t.resource);

        static const char with_skn[] = "SharedAccessSignature sr=h%2Fdevices%2Fd&sig=x&se=18446744073709551615&skn=my%20policy&x=y";
        assert_int_equal(sas_token_parse(with_skn, strlen(with_skn), &t), 0);
        assert_string_equal(t.key_name, "my policy");
        assert_true(t.expiry == UINT64_MAX);
        sas_token_deinit(&t);

        assert_int_equal(sas_token_parse(NODE_DEV, strlen(NODE_DEV), &t), 0);
        assert_null(t.key_name);
        sas_token_deinit(&t);
}

static void test_parse_malformed(void **state) {
        static const struct {
                const char *name, *token;
        } cases[] = {
                { "empty", "" },
                { "prefix only", "SharedAccessSignature " },
                { "no prefix", "sr=a&sig=b&se=1" },
                { "wrong prefix case", "sharedaccesssignature sr=a&sig=b&se=1" },
                { "two spaces", "SharedAccessSignature  sr=a&sig=b&se=1" },
                { "tab", "SharedAccessSignature\tsr=a&sig=b&se=1" },
                { "space inside", "SharedAccessSignature sr=a&sig=b&se=1 x" },
                { "missing sr", "SharedAccessSignature sig=b&se=1" },
                { "missing sig", "SharedAccessSignature sr=a&se=1" },
                { "missing se", "SharedAccessSignature sr=a&sig=b" },
                { "empty sr", "SharedAccessSignature sr=&sig=b&se=1" },
                { "empty sig", "SharedAccessSignature sr=a&sig=&se=1" },
                { "empty se", "SharedAccessSignature sr=a&sig=b&se=" },
                { "duplicate sr", "SharedAccessSignature sr=a&sr=a&sig=b&se=1" },
                { "duplicate sig", "SharedAccessSignature sr=a&sig=b&sig=b&se=1" },
                { "duplicate se", "SharedAccessSignature sr=a&sig=b&se=1&se=1" },
                { "duplicate skn", "SharedAccessSignature sr=a&sig=b&se=1&skn=&skn=" },
                { "non-numeric se", "SharedAccessSignature sr=a&sig=b&se=12a" },
                { "negative se", "SharedAccessSignature sr=a&sig=b&se=-1" },
                { "se with plus", "SharedAccessSignature sr=a&sig=b&se=+1" },
                { "se leading zero", "SharedAccessSignature sr=a&sig=b&se=01" },
                { "se overflow", "SharedAccessSignature sr=a&sig=b&se=18446744073709551616" },
                { "se hex", "SharedAccessSignature sr=a&sig=b&se=0x10" },
                { "field without =", "SharedAccessSignature sr=a&sig=b&se=1&skn" },
                { "empty field", "SharedAccessSignature sr=a&&sig=b&se=1" },
                { "trailing &", "SharedAccessSignature sr=a&sig=b&se=1&" },
                { "empty key", "SharedAccessSignature sr=a&sig=b&se=1&=x" },
                { "bad escape in sr", "SharedAccessSignature sr=a%2&sig=b&se=1" },
                { "bad hex in sr", "SharedAccessSignature sr=a%zz&sig=b&se=1" },
                { "encoded NUL in sr", "SharedAccessSignature sr=a%00b&sig=b&se=1" },
                { "bad escape in sig", "SharedAccessSignature sr=a&sig=%&se=1" },
                { "bad escape in skn", "SharedAccessSignature sr=a&sig=b&se=1&skn=%G0" },
        };
        SasToken t = SAS_TOKEN_NULL;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = sas_token_parse(cases[i].token, strlen(cases[i].token), &t);
                if (r != -EINVAL)
                        fail_msg("case '%s': got %d, want -EINVAL", cases[i].name, r);
                assert_null(t.resource);
        }

        /* An embedded NUL: the length is what counts. */
        static const char nul[] = "SharedAccessSignature sr=a&sig=b\0&se=1";
        assert_int_equal(sas_token_parse(nul, sizeof(nul) - 1, &t), -EINVAL);

        /* Over-long input, even if otherwise fine. */
        size_t n = 5000;
        _cleanup_free_ char *big = malloc(n + 1);
        assert_non_null(big);
        int k = snprintf(big, n + 1, "SharedAccessSignature sr=a&sig=b&se=1&x=");
        memset(big + k, 'a', n - (size_t) k);
        big[n] = 0;
        assert_int_equal(sas_token_parse(big, n, &t), -EINVAL);
        assert_int_equal(sas_token_parse(big, 4096, &t), 0);
        sas_token_deinit(&t);
        assert_int_equal(sas_token_parse(big, 4097, &t), -EINVAL);
}

static void test_mint(void **state) {
        static const char *const hub[] = { HUB };
        static const char *const k1[] = { KEY1 };
        static const char *const k2[] = { KEY2 };
        _cleanup_free_ char *tok = NULL;

        /* For this resource our encoding equals the Node SDK's: the tokens are identical. */
        assert_int_equal(sas_token_mint(HUB "/devices/dev-1", KEY1, UINT64_C(1700000000), &tok), 0);
        assert_string_equal(tok, NODE_DEV);
        free(tok);
        tok = NULL;

        assert_int_equal(sas_token_mint(HUB "/devices/dev-1", KEY2, UINT64_C(1700000000), &tok), 0);
        assert_string_equal(tok, NODE_DEV2);
        free(tok);
        tok = NULL;

        /* Mint then verify, ids with characters encodeURIComponent keeps and ones it escapes. */
        assert_int_equal(sas_token_mint(HUB "/devices/d(1)*!'/modules/$edge:Hub", KEY1, UINT64_C(1700000000), &tok), 0);
        assert_non_null(strstr(tok, "sr=" HUB "%2Fdevices%2Fd(1)*!'%2Fmodules%2F%24edge%3AHub&"));
        assert_int_equal(verify_str(tok, hub, 1, "d(1)*!'", "$edge:Hub", k1, 1, NOW), 0);
        assert_int_equal(verify_str(tok, hub, 1, "d(1)*!'", "$edge:Hub", k2, 1, NOW), -EKEYREJECTED);

        assert_int_equal(sas_token_mint("", KEY1, 1, &tok), -EINVAL);
        assert_int_equal(sas_token_mint("x", "bad key", 1, &tok), -EINVAL);
        assert_int_equal(sas_token_mint("x", "", 1, &tok), -EINVAL);

        /* A token built in memory (no sr as sent) is checked against url_encode(resource). */
        SasToken t = {
                .resource = (char *) HUB "/devices/dev-1",
                .signature = (char *) "9P9k7cepgTkOaGmNEjd4wFkh7fOk6kxqmqAk7lhd9T8=",
                .expiry = UINT64_C(1700000000),
        };
        assert_int_equal(sas_token_verify(&t, hub, 1, "dev-1", NULL, k1, 1, NOW), 0);
}

static void test_username(void **state) {
        static const struct {
                const char *s;
                int expect;
                const char *host, *device, *module;
        } cases[] = {
                { HUB "/dev-1/?api-version=2021-04-12", 0, HUB, "dev-1", NULL },
                { HUB "/dev-1/?api-version=2021-04-12&DeviceClientType=azure-iot-device%2F1.18.2", 0, HUB, "dev-1", NULL },
                { "gw/dev-1/$edgeHub/?api-version=2018-06-30&DeviceClientType=x/y/z", 0, "gw", "dev-1", "$edgeHub" },
                { HUB "/dev-1/mod.1/?api-version=2021-04-12&model-id=dtmi:a:b;1", 0, HUB, "dev-1", "mod.1" },
                { HUB "/dev-1/api-version=2016-11-14", 0, HUB, "dev-1", NULL },
                { HUB "/dev-1/", 0, HUB, "dev-1", NULL },
                { HUB "/dev-1", 0, HUB, "dev-1", NULL },
                { HUB "/dev-1/m/", 0, HUB, "dev-1", "m" },
                { HUB "/dev-1/m?x", 0, HUB, "dev-1", "m" },
                { "", -EINVAL },
                { HUB, -EINVAL },
                { HUB "/", -EINVAL },
                { HUB "/?api-version=1", -EINVAL },
                { "/dev-1/?api-version=1", -EINVAL },
                { HUB "//?api-version=1", -EINVAL },
                { HUB "/dev-1//?api-version=1", -EINVAL },
                { HUB "/dev-1/m/x/?api-version=1", -EINVAL },
                { HUB "/dev 1/?api-version=1", -EINVAL },
                { HUB "/dev#1/?api-version=1", -EINVAL },
                { "my hub/dev-1/?api-version=1", -EINVAL },
                { HUB "/dev-1/m+/?api-version=1", -EINVAL },
                { HUB "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaa/?api-version=1",
                  -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                IotUsername u = IOT_USERNAME_NULL;
                int r = iot_username_parse(cases[i].s, strlen(cases[i].s), &u);
                if (r != cases[i].expect)
                        fail_msg("username '%s': got %d, want %d", cases[i].s, r, cases[i].expect);
                if (r < 0) {
                        assert_null(u.host);
                        continue;
                }
                assert_string_equal(u.host, cases[i].host);
                assert_string_equal(u.device_id, cases[i].device);
                if (cases[i].module)
                        assert_string_equal(u.module_id, cases[i].module);
                else
                        assert_null(u.module_id);
                iot_username_deinit(&u);
        }

        IotUsername u = IOT_USERNAME_NULL;
        static const char nul[] = HUB "/dev\0-1/";
        assert_int_equal(iot_username_parse(nul, sizeof(nul) - 1, &u), -EINVAL);
}

static void test_ids(void **state) {
        char max[IOT_ID_MAX + 2];

        assert_true(iot_id_is_valid("a"));
        assert_true(iot_id_is_valid("Dev-1.x_y%z*?!(),:=@$'"));
        assert_true(iot_id_is_valid("$edgeHub"));
        assert_false(iot_id_is_valid(NULL));
        assert_false(iot_id_is_valid(""));
        assert_false(iot_id_is_valid("a/b"));
        assert_false(iot_id_is_valid("a b"));
        assert_false(iot_id_is_valid("a#"));
        assert_false(iot_id_is_valid("a&b"));
        assert_false(iot_id_is_valid("ä"));
        memset(max, 'x', IOT_ID_MAX);
        max[IOT_ID_MAX] = 0;
        assert_true(iot_id_is_valid(max));
        max[IOT_ID_MAX] = 'x';
        max[IOT_ID_MAX + 1] = 0;
        assert_false(iot_id_is_valid(max));
}

static void test_identity_split(void **state) {
        char *d = NULL, *m = NULL;

        assert_true(iot_identity_is_valid("dev-1"));
        assert_true(iot_identity_is_valid("dev-1/$edgeHub"));
        assert_false(iot_identity_is_valid(NULL));
        assert_int_equal(iot_identity_split("dev-1", &d, &m), 0);
        assert_string_equal(d, "dev-1");
        assert_null(m);
        free(d);

        assert_int_equal(iot_identity_split("dev-1/$edgeHub", &d, &m), 0);
        assert_string_equal(d, "dev-1");
        assert_string_equal(m, "$edgeHub");
        free(d);
        free(m);

        d = m = (char *) "untouched";
        static const char *const bad[] = { "", "/", "a/", "/b", "a/b/c", "a b", "a/b c" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (iot_identity_split(bad[i], &d, &m) != -EINVAL || iot_identity_is_valid(bad[i]))
                        fail_msg("identity '%s' accepted", bad[i]);
                assert_string_equal(d, "untouched");
                assert_string_equal(m, "untouched");
        }
        /* No place for a module: a module identity is refused. */
        assert_int_equal(iot_identity_split("a/b", &d, NULL), -EINVAL);
}

static void test_url_encode(void **state) {
        static const struct {
                const char *plain, *encoded;
        } cases[] = {
                { "", "" },
                { "abcXYZ019", "abcXYZ019" },
                { "-_.!~*'()", "-_.!~*'()" },
                /* The same string as Node's encodeURIComponent() (kat.js). */
                { "a b/c?d=e&f+g~h*i!j'k(l)m$n%o:p@q,r;s\xc3\xa4",
                  "a%20b%2Fc%3Fd%3De%26f%2Bg~h*i!j'k(l)m%24n%25o%3Ap%40q%2Cr%3Bs%C3%A4" },
                { "\x01\x7f\xff", "%01%7F%FF" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *e = NULL, *d = NULL;
                assert_int_equal(url_encode(cases[i].plain, strlen(cases[i].plain), &e), 0);
                assert_string_equal(e, cases[i].encoded);
                assert_int_equal(url_decode(e, strlen(e), &d), 0);
                assert_string_equal(d, cases[i].plain);
        }

        /* Every byte but NUL round-trips. */
        char all[255];
        for (size_t i = 0; i < sizeof(all); i++)
                all[i] = (char) (i + 1);
        _cleanup_free_ char *e = NULL, *d = NULL;
        assert_int_equal(url_encode(all, sizeof(all), &e), 0);
        assert_int_equal(url_decode(e, strlen(e), &d), 0);
        assert_memory_equal(d, all, sizeof(all));
        assert_int_equal(d[sizeof(all)], 0);
}

static void test_url_decode(void **state) {
        static const struct {
                const char *in;
                int expect;
                const char *out;
        } cases[] = {
                { "", 0, "" },
                { "a+b", 0, "a+b" },
                { "%2f%2F", 0, "//" },
                { "%41%62", 0, "Ab" },
                { "100%25", 0, "100%" },
                { "%", -EINVAL },
                { "%4", -EINVAL },
                { "a%", -EINVAL },
                { "%g1", -EINVAL },
                { "%1g", -EINVAL },
                { "%00", -EINVAL },
                { "% 1", -EINVAL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *d = NULL;
                int r = url_decode(cases[i].in, strlen(cases[i].in), &d);
                if (r != cases[i].expect)
                        fail_msg("decode '%s': got %d, want %d", cases[i].in, r, cases[i].expect);
                if (r >= 0)
                        assert_string_equal(d, cases[i].out);
                else
                        assert_null(d);
                free(d);
        }

        char *d = NULL;
        assert_int_equal(url_decode("a\0b", 3, &d), -EINVAL);
        assert_int_equal(url_decode("%41%42", 3, &d), 0); /* only the length counts */
        assert_string_equal(d, "A");
        free(d);
}

static void test_memeq_const(void **state) {
        assert_true(memeq_const("abc", 3, "abc", 3));
        assert_false(memeq_const("abc", 3, "abd", 3));
        assert_false(memeq_const("abc", 3, "abc", 2));
        assert_false(memeq_const("abc", 3, "abcd", 4));
        assert_true(memeq_const(NULL, 0, NULL, 0));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_verify_table),
                cmocka_unit_test(test_parse_fields),
                cmocka_unit_test(test_parse_malformed),
                cmocka_unit_test(test_mint),
                cmocka_unit_test(test_username),
                cmocka_unit_test(test_ids),
                cmocka_unit_test(test_identity_split),
                cmocka_unit_test(test_url_encode),
                cmocka_unit_test(test_url_decode),
                cmocka_unit_test(test_memeq_const),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
