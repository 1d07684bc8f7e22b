/* Tests of the credential check: one table row per outcome */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>

#include "auth-cache/auth-check.h"
#include "proto/iothub/sas-token.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "proto/util/url.h"

#define HUB "myhub.azure-devices.net"
#define GW "gateway.local"
#define NOW 1700000000u
#define API "/?api-version=2021-04-12"

/* base64 of arbitrary 32-byte-ish secrets */
#define P1 "cHJpbWFyeS1rZXktb2YtZGV2aWNlLW9uZS0xMjM0NTY="
#define S1 "c2Vjb25kYXJ5LWtleS1vZi1kZXZpY2Utb25lLTEyMzQ="
#define P2 "cHJpbWFyeS1rZXktb2YtZGV2aWNlLXR3by0xMjM0NTY3"
#define M1 "bW9kdWxlLWtleS1vZi1kMS1tMS0xMjM0NTY3ODkwMTI="
#define EH "ZWRnZWh1Yi1tb2R1bGUta2V5LTEyMzQ1Njc4OTAxMjM0"
#define WRONG "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktMTI="

typedef struct Row {
        const char *name;
        const char *client_id;
        const char *username;
        const char *raw_password;   /* used as is when set */
        const char *resource;       /* else a token for this resource... */
        const char *key;            /* ...signed with this key... */
        int64_t expiry_offset;      /* ...expiring at NOW + this */
        int expected;
        const char *reason;         /* on failure */
} Row;

static const Row rows[] = {
        { "good token, primary key", "d1", HUB "/d1" API, NULL, HUB "/devices/d1", P1, 3600, 0, NULL },
        { "good token, secondary key", "d1", HUB "/d1" API, NULL, HUB "/devices/d1", S1, 3600, 0, NULL },
        { "gateway host as audience", "d1", HUB "/d1" API, NULL, GW "/devices/d1", P1, 3600, 0, NULL },
        { "gateway host in username", "d1", GW "/d1" API, NULL, HUB "/devices/d1", P1, 3600, 0, NULL },
        { "host names are case-insensitive", "d1", "MyHub.Azure-Devices.NET/d1" API, NULL, "GATEWAY.local/devices/d1", P1, 3600, 0, NULL },
        { "module", "d1/m1", HUB "/d1/m1" API, NULL, HUB "/devices/d1/modules/m1", M1, 3600, 0, NULL },
        { "edge's own module", "edge1/$edgeHub", HUB "/edge1/$edgeHub" API, NULL, HUB "/devices/edge1/modules/%24edgeHub", EH, 3600, 0, NULL },
        { "expired token", "d1", HUB "/d1" API, NULL, HUB "/devices/d1", P1, -60, -EACCES, "expired token" },
        { "wrong key", "d1", HUB "/d1" API, NULL, HUB "/devices/d1", WRONG, 3600, -EACCES, "bad signature" },
        { "another device's key", "d1", HUB "/d1" API, NULL, HUB "/devices/d1", P2, 3600, -EACCES, "bad signature" },
        { "token for another device", "d1", HUB "/d1" API, NULL, HUB "/devices/d2", P1, 3600, -EACCES, "wrong audience" },
        { "token for a module of the device", "d1", HUB "/d1" API, NULL, HUB "/devices/d1/modules/m1", P1, 3600, -EACCES, "wrong audience" },
        { "token for a foreign host", "d1", HUB "/d1" API, NULL, "evil.example/devices/d1", P1, 3600, -EACCES, "wrong audience" },
        { "disabled device, right key", "d2", HUB "/d2" API, NULL, HUB "/devices/d2", P2, 3600, -EACCES, "disabled" },
        { "module of a disabled device", "d2/m", HUB "/d2/m" API, NULL, HUB "/devices/d2/modules/m", P2, 3600, -EACCES, "disabled" },
        { "unknown device", "d9", HUB "/d9" API, NULL, HUB "/devices/d9", P1, 3600, -ENOENT, "unknown identity" },
        { "unknown module", "d1/m9", HUB "/d1/m9" API, NULL, HUB "/devices/d1/modules/m9", P1, 3600, -ENOENT, "unknown identity" },
        { "client id of another device", "d2", HUB "/d1" API, NULL, HUB "/devices/d1", P1, 3600, -EACCES, "client id mismatch" },
        { "client id longer than the device", "d1x", HUB "/d1" API, NULL, HUB "/devices/d1", P1, 3600, -EACCES, "client id mismatch" },
        { "client id with a stray slash", "d1/", HUB "/d1" API, NULL, HUB "/devices/d1", P1, 3600, -EACCES, "client id mismatch" },
        { "device client id, module username", "d1", HUB "/d1/m1" API, NULL, HUB "/devices/d1/modules/m1", M1, 3600, -EACCES, "client id mismatch" },
        { "module client id, device username", "d1/m1", HUB "/d1" API, NULL, HUB "/devices/d1", P1, 3600, -EACCES, "client id mismatch" },
        { "client id missing", NULL, HUB "/d1" API, NULL, HUB "/devices/d1", P1, 3600, -EACCES, "client id mismatch" },
        { "username of a foreign hub", "d1", "otherhub.azure-devices.net/d1" API, NULL, HUB "/devices/d1", P1, 3600, -EACCES, "unknown host" },
        { "malformed username", "d1", "d1", NULL, HUB "/devices/d1", P1, 3600, -EACCES, "malformed username" },
        { "empty username", "d1", "", NULL, HUB "/devices/d1", P1, 3600, -EACCES, "malformed username" },
        { "missing username", "d1", NULL, NULL, HUB "/devices/d1", P1, 3600, -EACCES, "malformed username" },
        { "malformed password", "d1", HUB "/d1" API, "hunter2", NULL, NULL, 0, -EACCES, "malformed password" },
        { "password with a bad escape", "d1", HUB "/d1" API, "SharedAccessSignature sr=%zz&sig=abc&se=1", NULL, NULL, 0, -EACCES, "malformed password" },
        { "empty password", "d1", HUB "/d1" API, "", NULL, NULL, 0, -EACCES, "missing password" },
};

static Scope *make_scope(void) {
        static const struct {
                const char *device, *module, *primary, *secondary;
                bool enabled;
        } ids[] = {
                { "edge1", NULL, "ZQ==", NULL, true },
                { "edge1", "$edgeHub", EH, NULL, true },
                { "d1", NULL, P1, S1, true },
                { "d1", "m1", M1, NULL, true },
                { "d2", NULL, P2, NULL, false },
                { "d2", "m", P2, NULL, true }, /* disabled by its device in scope_finalize() */
        };
        Scope *s = NULL;

        assert_int_equal(scope_new(&s), 0);
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                _cleanup_(identity_freep) Identity *id = NULL;
                assert_int_equal(identity_new(&id, ids[i].device, ids[i].module), 0);
                id->enabled = ids[i].enabled;
                id->primary_key = strdup(ids[i].primary);
                id->secondary_key = ids[i].secondary ? strdup(ids[i].secondary) : NULL;
                assert_int_equal(scope_add(s, &id), 0);
        }
        assert_int_equal(scope_finalize(s, "edge1"), 0);
        return s;
}

static void test_table(void **state) {
        _cleanup_(scope_freep) Scope *scope = make_scope();
        const char *const hosts[] = { HUB, GW };

        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                const Row *row = &rows[i];
                _cleanup_free_ char *token = NULL;
                const Identity *id = NULL;
                const char *reason = NULL;

                print_message("row %zu: %s\n", i, row->name);
                if (!row->raw_password) {
                        _cleanup_free_ char *resource = NULL;
                        /* The token's sr is the resource as a device SDK would write it. */
                        assert_int_equal(url_decode(row->resource, strlen(row->resource), &resource), 0);
                        assert_int_equal(sas_token_mint(resource, row->key, (uint64_t) ((int64_t) NOW + row->expiry_offset), &token), 0);
                }
                const char *password = row->raw_password ? row->raw_password : token;
                AuthRequest req = {
                        .client_id = row->client_id,
                        .username = row->username,
                        .password = password,
                        .password_len = strlen(password),
                };

                int r = auth_check(scope, hosts, ELEMENTSOF(hosts), &req, NOW, &id, &reason);
                assert_int_equal(r, row->expected);
                if (r == 0) {
                        assert_non_null(id);
                        assert_string_equal(id->name, row->client_id);
                } else {
                        assert_null(id);
                        assert_non_null(reason);
                        assert_string_equal(reason, row->reason);
                }
        }
}

static void test_missing_password(void **state) {
        _cleanup_(scope_freep) Scope *scope = make_scope();
        const char *const hosts[] = { HUB };
        const Identity *id = NULL;
        const char *reason = NULL;
        AuthRequest req = { .client_id = "d1", .username = HUB "/d1" API };

        assert_int_equal(auth_check(scope, hosts, 1, &req, NOW, &id, &reason), -EACCES);
        assert_string_equal(reason, "missing password");
}

static void test_gateway_not_configured(void **state) {
        _cleanup_(scope_freep) Scope *scope = make_scope();
        _cleanup_free_ char *token = NULL;
        const char *const hosts[] = { HUB };
        const Identity *id = NULL;
        const char *reason = NULL;

        /* Only the hub's name is ours: the gateway's name is then a foreign audience. */
        assert_int_equal(sas_token_mint(GW "/devices/d1", P1, NOW + 60, &token), 0);
        AuthRequest req = { .client_id = "d1", .username = HUB "/d1" API, .password = token, .password_len = strlen(token) };
        assert_int_equal(auth_check(scope, hosts, 1, &req, NOW, &id, &reason), -EACCES);
        assert_string_equal(reason, "wrong audience");
}

static void test_token_lifetime(void **state) {
        _cleanup_(scope_freep) Scope *scope = make_scope();
        const char *const hosts[] = { HUB };
        static const struct {
                uint64_t expiry;
                int expected;
        } cases[] = {
                { NOW + 3600, 0 },
                { NOW + 86400, 0 },        /* exactly the maximum */
                { NOW + 86401, -EACCES },
                { UINT64_MAX, -EACCES },   /* "never expires" was accepted before */
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *token = NULL;
                const Identity *id = NULL;
                const char *reason = NULL;

                assert_int_equal(sas_token_mint(HUB "/devices/d1", P1, cases[i].expiry, &token), 0);
                AuthRequest req = { .client_id = "d1", .username = HUB "/d1" API, .password = token,
                                    .password_len = strlen(token), .max_lifetime_sec = 86400 };
                assert_int_equal(auth_check(scope, hosts, 1, &req, NOW, &id, &reason), cases[i].expected);
                if (cases[i].expected < 0)
                        assert_string_equal(reason, "token lifetime too long");
                /* No limit configured: any future expiry. */
                req.max_lifetime_sec = 0;
                assert_int_equal(auth_check(scope, hosts, 1, &req, NOW, &id, &reason), 0);
        }
}

static void test_empty_scope(void **state) {
        _cleanup_(scope_freep) Scope *scope = NULL;
        _cleanup_free_ char *token = NULL;
        const char *const hosts[] = { HUB };
        const Identity *id = NULL;
        const char *reason = NULL;

        /* Before the first sync nobody is in scope. */
        assert_int_equal(scope_new(&scope), 0);
        assert_int_equal(sas_token_mint(HUB "/devices/d1", P1, NOW + 60, &token), 0);
        AuthRequest req = { .client_id = "d1", .username = HUB "/d1" API, .password = token, .password_len = strlen(token) };
        assert_int_equal(auth_check(scope, hosts, 1, &req, NOW, &id, &reason), -ENOENT);
}

/* X.509 identities take their certificate, never a token; SAS identities the reverse. */
static void test_x509_identities(void **state) {
        _cleanup_(scope_freep) Scope *scope = make_scope();
        _cleanup_(identity_freep) Identity *x = NULL, *off = NULL;
        _cleanup_free_ char *token = NULL;
        const char *const hosts[] = { HUB };
        const Identity *id = NULL;
        const char *reason = NULL;

        assert_int_equal(identity_new(&x, "x1", NULL), 0);
        x->auth = IDENTITY_AUTH_SELF_SIGNED;
        x->primary_thumbprint = strdup("0123456789abcdef0123456789abcdef01234567");
        assert_int_equal(scope_add(scope, &x), 0);
        assert_int_equal(identity_new(&off, "x2", NULL), 0);
        off->auth = IDENTITY_AUTH_CA;
        off->enabled = false;
        assert_int_equal(scope_add(scope, &off), 0);
        assert_int_equal(scope_finalize(scope, "edge1"), 0);

        /* No certificate: a valid-looking token does not help. */
        assert_int_equal(sas_token_mint(HUB "/devices/x1", P1, NOW + 60, &token), 0);
        AuthRequest req = { .client_id = "x1", .username = HUB "/x1" API, .password = token, .password_len = strlen(token) };
        assert_int_equal(auth_check(scope, hosts, 1, &req, NOW, &id, &reason), -EACCES);
        assert_string_equal(reason, "no certificate");

        req.cert = "garbage";
        req.cert_len = 7;
        assert_int_equal(auth_check(scope, hosts, 1, &req, NOW, &id, &reason), -EACCES);
        assert_string_equal(reason, "malformed certificate");

        /* The username is still checked first. */
        req.client_id = "x2";
        assert_int_equal(auth_check(scope, hosts, 1, &req, NOW, &id, &reason), -EACCES);
        assert_string_equal(reason, "client id mismatch");
        req.username = HUB "/x2" API;
        assert_int_equal(auth_check(scope, hosts, 1, &req, NOW, &id, &reason), -EACCES);
        assert_string_equal(reason, "malformed certificate");

        /* A certificate on a SAS identity changes nothing: the token decides. */
        AuthRequest sas = { .client_id = "d1", .username = HUB "/d1" API, .cert = "garbage", .cert_len = 7 };
        assert_int_equal(auth_check(scope, hosts, 1, &sas, NOW, &id, &reason), -EACCES);
        assert_string_equal(reason, "missing password");
        assert_null(id);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_x509_identities),
                cmocka_unit_test(test_table),
                cmocka_unit_test(test_missing_password),
                cmocka_unit_test(test_gateway_not_configured),
                cmocka_unit_test(test_empty_scope),
                cmocka_unit_test(test_token_lifetime),
        };

        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
