/* Unit tests: the sorted key map */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proto/store/key-map.h"

static void test_put_get_remove(void **state) {
        KeyMap m = KEY_MAP_NULL;
        static char names[100][8];
        int values[100];

        /* Inserted in a scrambled order; listed sorted. */
        for (int k = 0; k < 100; k++) {
                int i = (k * 37) % 100;
                snprintf(names[i], sizeof(names[i]), "id%02d", i);
                values[i] = i;
                assert_int_equal(key_map_put(&m, names[i], strlen(names[i]), &values[i]), 0);
        }
        assert_int_equal(key_map_put(&m, "id05", 4, &values[0]), -EEXIST);
        assert_int_equal(key_map_size(&m), 100);
        for (size_t i = 0; i < 100; i++)
                assert_int_equal(*(int *) key_map_value_at(&m, i), (int) i);

        assert_ptr_equal(key_map_get(&m, "id42", 4), &values[42]);
        assert_null(key_map_get(&m, "id4", 3));
        assert_null(key_map_get(&m, "id420", 5));

        assert_ptr_equal(key_map_remove(&m, "id42", 4), &values[42]);
        assert_null(key_map_remove(&m, "id42", 4));
        assert_null(key_map_get(&m, "id42", 4));
        assert_int_equal(key_map_size(&m), 99);
        assert_int_equal(*(int *) key_map_value_at(&m, 42), 43);

        /* Binary keys with NULs: a shorter key sorts first. */
        assert_int_equal(key_map_put(&m, "a\0b", 3, &values[1]), 0);
        assert_int_equal(key_map_put(&m, "a\0", 2, &values[2]), 0);
        assert_ptr_equal(key_map_get(&m, "a\0b", 3), &values[1]);
        assert_ptr_equal(key_map_value_at(&m, 0), &values[2]);
        key_map_deinit(&m);
        assert_int_equal(key_map_size(&m), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_put_get_remove),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
