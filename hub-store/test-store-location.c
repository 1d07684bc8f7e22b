/* Unit tests: the message store's location file (where it is, a move in progress) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "hub-store/store-location.h"
#include "proto/util/cleanup.h"

static void test_paths(void **state) {
        assert_true(store_location_path_is_valid("/var/lib/edgehub/messages"));
        assert_true(store_location_path_is_valid("/mnt/sd card/.hidden/x..y"));
        assert_false(store_location_path_is_valid(""));
        assert_false(store_location_path_is_valid("/"));
        assert_false(store_location_path_is_valid("relative/path"));
        assert_false(store_location_path_is_valid("/a/"));
        assert_false(store_location_path_is_valid("/a//b"));
        assert_false(store_location_path_is_valid("/a/./b"));
        assert_false(store_location_path_is_valid("/a/../etc"));
        assert_false(store_location_path_is_valid("/.."));
        assert_false(store_location_path_is_valid("/a\nb"));
        assert_false(store_location_path_is_valid("/a\x7f"));
        char *longer = malloc(4098);
        assert_non_null(longer);
        memset(longer, 'a', 4097);
        longer[0] = '/';
        longer[4097] = 0;
        assert_false(store_location_path_is_valid(longer));
        longer[4095] = 0;
        assert_true(store_location_path_is_valid(longer));
        free(longer);
}

static void parse_ok(const char *text, const char *dir, const char *wanted, const char *remove) {
        StoreLocation l = {};
        char *error = NULL;

        assert_int_equal(store_location_parse(text, strlen(text), &l, &error), 0);
        assert_null(error);
        assert_string_equal(l.dir, dir);
        if (wanted)
                assert_string_equal(l.wanted, wanted);
        else
                assert_null(l.wanted);
        if (remove)
                assert_string_equal(l.remove, remove);
        else
                assert_null(l.remove);

        /* What is formatted parses back to the same. */
        _cleanup_free_ char *again = store_location_format(&l);
        StoreLocation m = {};
        assert_non_null(again);
        assert_int_equal(store_location_parse(again, strlen(again), &m, NULL), 0);
        assert_string_equal(m.dir, l.dir);
        assert_true((!m.wanted && !l.wanted) || strcmp(m.wanted, l.wanted) == 0);
        assert_true((!m.remove && !l.remove) || strcmp(m.remove, l.remove) == 0);
        assert_null(strstr(again, "null"));
        store_location_deinit(&m);
        store_location_deinit(&l);
}

static void test_parse(void **state) {
        parse_ok("{\"dir\": \"/var/lib/edgehub/messages\"}", "/var/lib/edgehub/messages", NULL, NULL);
        parse_ok("{\"dir\": \"/a/messages\", \"wanted\": \"/b/messages\"}", "/a/messages", "/b/messages", NULL);
        parse_ok("{\"dir\": \"/b/messages\", \"remove\": \"/a/messages\"}", "/b/messages", NULL, "/a/messages");
}

static void parse_bad(const char *text, const char *expect) {
        StoreLocation l = {};
        char *error = NULL;

        assert_int_equal(store_location_parse(text, strlen(text), &l, &error), -EBADMSG);
        assert_non_null(error);
        if (!strstr(error, expect))
                fail_msg("'%s' does not say '%s'", error, expect);
        assert_null(l.dir);
        free(error);
}

static void test_bad(void **state) {
        static const char nul[] = "{\"dir\": \"/a\\u0000/b\"}";

        parse_bad("", "not JSON");
        parse_bad("{\"dir\": ", "not JSON");
        parse_bad("[]", "must be an object, not an array");
        parse_bad("{}", "'dir' is missing");
        parse_bad("{\"dir\": 1}", "'dir' must be a string, not a number");
        parse_bad("{\"dir\": \"rel\"}", "'dir' is not an absolute, normalized path");
        parse_bad("{\"dir\": \"/a/../b\"}", "not an absolute, normalized path");
        parse_bad(nul, "not JSON"); /* a NUL would cut the path we act on */
        parse_bad("{\"dir\": \"/a\", \"wanted\": null}", "'wanted' must be a string, not null");
        parse_bad("{\"dir\": \"/a\", \"x\": 1}", "unknown key 'x'");
        parse_bad("{\"dir\": \"/a\", \"dir\": \"/b\"}", "not JSON");
        parse_bad("{\"dir\": \"/a\", \"wanted\": \"/b\", \"remove\": \"/c\"}", "cannot both be set");
        parse_bad("{\"dir\": \"/a\", \"wanted\": \"/a\"}", "to itself");
        parse_bad("{\"dir\": \"/a\", \"remove\": \"/a\"}", "to itself");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_paths),
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_bad),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
