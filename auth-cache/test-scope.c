/* Tests of the in-memory scope: lookups, finalize rules, diffs */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>

#include "auth-cache/scope.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

static void add(Scope *s, const char *device, const char *module, bool enabled, const char *key) {
        _cleanup_(identity_freep) Identity *id = NULL;

        assert_int_equal(identity_new(&id, device, module), 0);
        id->enabled = enabled;
        id->primary_key = strdup(key);
        assert_int_equal(scope_add(s, &id), 0);
}

static void test_identity_new(void **state) {
        Identity *id = NULL;

        assert_int_equal(identity_new(&id, "", NULL), -EINVAL);
        assert_int_equal(identity_new(&id, "a/b", NULL), -EINVAL);
        assert_int_equal(identity_new(&id, "a", "b/c"), -EINVAL);
        assert_int_equal(identity_new(&id, "a", ""), -EINVAL);
        assert_null(id);
        assert_int_equal(identity_new(&id, "a", "$edgeHub"), 0);
        assert_string_equal(id->name, "a/$edgeHub");
        identity_free(id);
}

static void test_keys_revoked(void **state) {
        Identity a = { .primary_key = (char *) "cA==", .secondary_key = (char *) "cw==" };
        Identity b = a;

        assert_false(identity_keys_revoked(&a, &b));
        /* A swap keeps both keys valid. */
        b = (Identity){ .primary_key = (char *) "cw==", .secondary_key = (char *) "cA==" };
        assert_false(identity_keys_revoked(&a, &b));
        /* A key added where there was none revokes nothing. */
        Identity only_primary = { .primary_key = (char *) "cA==" };
        assert_false(identity_keys_revoked(&only_primary, &a));
        /* Regenerating either key revokes it; so does dropping it. */
        b = (Identity){ .primary_key = (char *) "bg==", .secondary_key = (char *) "cw==" };
        assert_true(identity_keys_revoked(&a, &b));
        b = (Identity){ .primary_key = (char *) "cA==", .secondary_key = (char *) "bg==" };
        assert_true(identity_keys_revoked(&a, &b));
        assert_true(identity_keys_revoked(&a, &only_primary));
}

static void test_lookup_is_case_sensitive(void **state) {
        _cleanup_(scope_freep) Scope *s = NULL;

        assert_int_equal(scope_new(&s), 0);
        for (int i = 0; i < 500; i++) {
                char name[16];
                snprintf(name, sizeof(name), "dev%03d", (i * 7) % 500);
                add(s, name, NULL, true, "aw==");
        }
        add(s, "Dev", NULL, true, "aw==");
        assert_int_equal(scope_finalize(s, "edge"), 0);
        assert_int_equal(s->n_items, 501);
        for (int i = 0; i < 500; i++) {
                char name[16];
                snprintf(name, sizeof(name), "dev%03d", i);
                assert_non_null(scope_find(s, name));
        }
        assert_non_null(scope_find(s, "Dev"));
        assert_null(scope_find(s, "dev"));
        assert_null(scope_find(s, "DEV000"));
        assert_null(scope_find(s, "dev500"));
}

static void test_finalize_modules(void **state) {
        _cleanup_(scope_freep) Scope *s = NULL;

        assert_int_equal(scope_new(&s), 0);
        add(s, "orphan", "m", true, "aw==");   /* no device: dropped */
        add(s, "edge", "$edgeAgent", true, "aw==");  /* the edge's: kept without the edge device */
        add(s, "off", NULL, false, "aw==");
        add(s, "off", "m", true, "aw==");       /* follows its device */
        add(s, "on", "m", true, "aw==");
        add(s, "on", NULL, true, "aw==");
        assert_int_equal(scope_finalize(s, "edge"), 1);
        assert_null(scope_find(s, "orphan/m"));
        assert_non_null(scope_find(s, "edge/$edgeAgent"));
        assert_false(scope_find(s, "off/m")->enabled);
        assert_true(scope_find(s, "on/m")->enabled);
        assert_int_equal(s->n_items, 5);
}

typedef struct Change {
        char name[32];
        char what; /* '+' added, '-' removed, '~' changed */
} Change;

typedef struct Changes {
        Change list[16];
        size_t n;
} Changes;

static int record(const Identity *a, const Identity *b, void *userdata) {
        Changes *c = userdata;
        Change *x = &c->list[c->n++];

        snprintf(x->name, sizeof(x->name), "%s", (a ? a : b)->name);
        x->what = !a ? '+' : !b ? '-' : '~';
        return 0;
}

static void test_diff(void **state) {
        _cleanup_(scope_freep) Scope *old_scope = NULL, *new_scope = NULL;
        Changes c = {};

        assert_int_equal(scope_new(&old_scope), 0);
        add(old_scope, "a", NULL, true, "aw==");
        add(old_scope, "b", NULL, true, "aw==");
        add(old_scope, "c", NULL, true, "aw==");
        add(old_scope, "e", NULL, true, "aw==");
        assert_int_equal(scope_finalize(old_scope, "x"), 0);

        assert_int_equal(scope_new(&new_scope), 0);
        add(new_scope, "a", NULL, true, "aw==");   /* same */
        add(new_scope, "b", NULL, false, "aw==");  /* disabled */
        add(new_scope, "d", NULL, true, "aw==");   /* new */
        add(new_scope, "e", NULL, true, "bmV3");   /* new key */
        assert_int_equal(scope_finalize(new_scope, "x"), 0);

        assert_int_equal(scope_diff(old_scope, new_scope, record, &c), 0);
        assert_int_equal(c.n, 4);
        assert_string_equal(c.list[0].name, "b");
        assert_int_equal(c.list[0].what, '~');
        assert_string_equal(c.list[1].name, "c");
        assert_int_equal(c.list[1].what, '-');
        assert_string_equal(c.list[2].name, "d");
        assert_int_equal(c.list[2].what, '+');
        assert_string_equal(c.list[3].name, "e");
        assert_int_equal(c.list[3].what, '~');

        /* From nothing: everything is new. */
        c = (Changes) {};
        assert_int_equal(scope_diff(NULL, new_scope, record, &c), 0);
        assert_int_equal(c.n, 4);
        for (size_t i = 0; i < c.n; i++)
                assert_int_equal(c.list[i].what, '+');
}

static void test_certificate_revoked(void **state) {
        _cleanup_(identity_freep) Identity *a = NULL, *b = NULL, *sas = NULL;
        static const char t1[] = "0123456789abcdef0123456789abcdef01234567",
                          t2[] = "1123456789abcdef0123456789abcdef01234567";

        assert_int_equal(identity_new(&a, "x", NULL), 0);
        assert_int_equal(identity_new(&b, "x", NULL), 0);
        assert_int_equal(identity_new(&sas, "x", NULL), 0);
        a->auth = b->auth = IDENTITY_AUTH_SELF_SIGNED;
        a->primary_thumbprint = strdup(t1);
        b->primary_thumbprint = strdup(t1);
        assert_false(identity_certificate_revoked(a, b));
        /* A new secondary added: nothing was taken away. */
        b->secondary_thumbprint = strdup(t2);
        assert_false(identity_certificate_revoked(a, b));
        assert_false(identity_equal(a, b));
        /* Primary and secondary swapped: both still accepted. */
        a->secondary_thumbprint = strdup(t2);
        free(b->primary_thumbprint);
        b->primary_thumbprint = strdup(t2);
        free(b->secondary_thumbprint);
        b->secondary_thumbprint = strdup(t1);
        assert_false(identity_certificate_revoked(a, b));
        /* The thumbprint replaced. */
        free(b->secondary_thumbprint);
        b->secondary_thumbprint = NULL;
        assert_true(identity_certificate_revoked(a, b));
        /* Moved to SAS, or to a CA. */
        assert_true(identity_certificate_revoked(a, sas));
        b->auth = IDENTITY_AUTH_CA;
        assert_true(identity_certificate_revoked(a, b));
        /* SAS devices are not disconnected by a key rotation (as IoT Hub). */
        assert_false(identity_certificate_revoked(sas, a));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_certificate_revoked),
                cmocka_unit_test(test_identity_new),
                cmocka_unit_test(test_keys_revoked),
                cmocka_unit_test(test_lookup_is_case_sensitive),
                cmocka_unit_test(test_finalize_modules),
                cmocka_unit_test(test_diff),
        };

        log_set_max_level(LOG_ERR);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
