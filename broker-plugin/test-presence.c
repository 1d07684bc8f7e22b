/* Tests of the presence table: takeovers and repeated disconnects */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "broker-plugin/presence.h"
#include "proto/cleanup.h"

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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_presence_simple),
                cmocka_unit_test(test_presence_takeover),
                cmocka_unit_test(test_presence_repeated_disconnect),
                cmocka_unit_test(test_presence_unknown),
                cmocka_unit_test(test_presence_reused_connection),
                cmocka_unit_test(test_presence_many),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
