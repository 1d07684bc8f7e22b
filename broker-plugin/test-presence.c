/* Tests of the presence table: takeovers and repeated disconnects */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "broker-plugin/presence.h"
#include "proto/util/cleanup.h"

static int conn[8];

static void test_presence_simple(void **state) {
        _cleanup_(presence_deinit) Presence p = PRESENCE_NULL;
        _cleanup_free_ char *gone = NULL;

        assert_int_equal(presence_add(&p, &conn[0], "d"), 1);
        assert_int_equal(presence_count(&p, "d"), 1);
        assert_int_equal(presence_remove(&p, &conn[0], &gone), 1);
        assert_string_equal(gone, "d");
        assert_int_equal(presence_count(&p, "d"), 0);
}

/* A new connection takes over the client id: authenticated first, the old one closed after. */
static void test_presence_takeover(void **state) {
        _cleanup_(presence_deinit) Presence p = PRESENCE_NULL;
        char *gone = NULL;

        assert_int_equal(presence_add(&p, &conn[0], "d"), 1);
        assert_int_equal(presence_add(&p, &conn[1], "d"), 0);
        assert_int_equal(presence_remove(&p, &conn[0], &gone), 0);
        assert_null(gone);
        assert_int_equal(presence_count(&p, "d"), 1);
        assert_int_equal(presence_remove(&p, &conn[1], &gone), 1);
        assert_string_equal(gone, "d");
        free(gone);
}

/* A persistent session's end is reported again when a new connection takes it over. */
static void test_presence_repeated_disconnect(void **state) {
        _cleanup_(presence_deinit) Presence p = PRESENCE_NULL;
        char *gone = NULL;

        assert_int_equal(presence_add(&p, &conn[0], "d/m"), 1);
        assert_int_equal(presence_remove(&p, &conn[0], &gone), 1);
        free(gone);
        gone = NULL;
        assert_int_equal(presence_add(&p, &conn[1], "d/m"), 1);
        /* the old session, "disconnected" once more by the takeover */
        assert_int_equal(presence_remove(&p, &conn[0], &gone), 0);
        assert_null(gone);
        assert_int_equal(presence_count(&p, "d/m"), 1);
}

/* Refused and internal clients were never added. */
static void test_presence_unknown(void **state) {
        _cleanup_(presence_deinit) Presence p = PRESENCE_NULL;
        char *gone = NULL;

        assert_int_equal(presence_remove(&p, &conn[5], &gone), 0);
        assert_int_equal(presence_add(&p, &conn[0], "a"), 1);
        assert_int_equal(presence_remove(&p, &conn[5], &gone), 0);
        assert_null(gone);
}

/* The broker reuses freed memory: an entry whose end we missed is replaced. */
static void test_presence_reused_connection(void **state) {
        _cleanup_(presence_deinit) Presence p = PRESENCE_NULL;
        char *gone = NULL;

        assert_int_equal(presence_add(&p, &conn[0], "a"), 1);
        assert_int_equal(presence_add(&p, &conn[0], "b"), 1);
        assert_int_equal(presence_count(&p, "a"), 0);
        assert_int_equal(presence_remove(&p, &conn[0], &gone), 1);
        assert_string_equal(gone, "b");
        free(gone);
}

static void test_presence_many(void **state) {
        _cleanup_(presence_deinit) Presence p = PRESENCE_NULL;
        static char many[1000];
        char id[16];

        for (size_t i = 0; i < ELEMENTSOF(many); i++) {
                snprintf(id, sizeof(id), "dev%zu", i % 100);
                assert_int_equal(presence_add(&p, &many[i], id), i < 100);
        }
        for (size_t i = 0; i < ELEMENTSOF(many); i++) {
                char *gone = NULL;
                assert_int_equal(presence_remove(&p, &many[i], &gone), i >= 900);
                free(gone);
        }
        assert_int_equal(p.n, 0);
}

typedef struct Seen {
        char ids[8][8];
        unsigned n;
        unsigned stop_after; /* 0: never */
} Seen;

static int collect(const char *identity, void *userdata) {
        Seen *s = userdata;
        if (s->stop_after > 0 && s->n == s->stop_after)
                return -ECANCELED;
        assert_true(s->n < ELEMENTSOF(s->ids));
        snprintf(s->ids[s->n++], sizeof(s->ids[0]), "%s", identity);
        return 0;
}

static bool seen(const Seen *s, const char *identity) {
        for (unsigned i = 0; i < s->n; i++)
                if (strcmp(s->ids[i], identity) == 0)
                        return true;
        return false;
}

/* After hub-store restarts, each connected identity is reported once, however many connections it has. */
static void test_presence_foreach_identity(void **state) {
        _cleanup_(presence_deinit) Presence p = PRESENCE_NULL;
        char *gone = NULL;
        Seen s = {};

        assert_int_equal(presence_foreach_identity(&p, collect, &s), 0);
        assert_int_equal(s.n, 0);

        assert_int_equal(presence_add(&p, &conn[0], "a"), 1);
        assert_int_equal(presence_add(&p, &conn[1], "b/m"), 1);
        assert_int_equal(presence_add(&p, &conn[2], "a"), 0);
        assert_int_equal(presence_add(&p, &conn[3], "c"), 1);
        assert_int_equal(presence_add(&p, &conn[4], "b/m"), 0);
        assert_int_equal(presence_remove(&p, &conn[3], &gone), 1);
        free(gone);

        assert_int_equal(presence_foreach_identity(&p, collect, &s), 0);
        assert_int_equal(s.n, 2);
        assert_true(seen(&s, "a"));
        assert_true(seen(&s, "b/m"));

        /* The callback's error stops the walk. */
        s = (Seen){ .stop_after = 1 };
        assert_int_equal(presence_foreach_identity(&p, collect, &s), -ECANCELED);
        assert_int_equal(s.n, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_presence_simple),
                cmocka_unit_test(test_presence_takeover),
                cmocka_unit_test(test_presence_repeated_disconnect),
                cmocka_unit_test(test_presence_unknown),
                cmocka_unit_test(test_presence_reused_connection),
                cmocka_unit_test(test_presence_many),
                cmocka_unit_test(test_presence_foreach_identity),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
