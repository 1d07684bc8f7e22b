/* Unit tests: message-store record codec */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hub-store/store-record.h"

static void test_roundtrip(void **state) {
        static const uint8_t payload[] = { 0, 1, 2, 0xff, 0 };
        StoreMessage in = {
                .time_ms = 1700000000123ull,
                .identity = "dev/mod",
                .properties = "%24.ct=application%2Fjson&a=1",
                .output = "out1",
                .payload = payload,
                .payload_len = sizeof(payload),
        }, out;
        FrameBuilder b;
        size_t len;

        assert_int_equal(store_record_encode(&in, &b), 0);
        const uint8_t *v = store_record_value(&b, &len);
        assert_int_equal(store_record_decode(v, len, &out), 0);
        assert_int_equal(out.time_ms, in.time_ms);
        assert_string_equal(out.identity, "dev/mod");
        assert_string_equal(out.properties, in.properties);
        assert_string_equal(out.output, "out1");
        assert_int_equal(out.payload_len, sizeof(payload));
        assert_memory_equal(out.payload, payload, sizeof(payload));

        uint64_t t;
        assert_int_equal(store_record_decode_time(v, len, &t), 0);
        assert_int_equal(t, in.time_ms);
        frame_builder_deinit(&b);

        /* No output, empty bag, empty payload. */
        in.output = NULL;
        in.properties = "";
        in.payload_len = 0;
        assert_int_equal(store_record_encode(&in, &b), 0);
        v = store_record_value(&b, &len);
        assert_int_equal(store_record_decode(v, len, &out), 0);
        assert_null(out.output);
        assert_string_equal(out.properties, "");
        assert_int_equal(out.payload_len, 0);
        frame_builder_deinit(&b);
}

static void test_bad_records(void **state) {
        StoreMessage in = { .time_ms = 1, .identity = "d", .properties = "", .payload = (const uint8_t *) "x", .payload_len = 1 }, out;
        FrameBuilder b;
        size_t len;
        uint8_t copy[256];

        assert_int_equal(store_record_decode("", 0, &out), -EBADMSG);
        assert_int_equal(store_record_decode("\x52", 1, &out), -EBADMSG);

        assert_int_equal(store_record_encode(&in, &b), 0);
        const uint8_t *v = store_record_value(&b, &len);
        assert_true(len <= sizeof(copy));

        /* Every truncation is refused. */
        for (size_t n = 0; n < len; n++)
                assert_int_equal(store_record_decode(v, n, &out), -EBADMSG);

        /* Wrong type. */
        memcpy(copy, v, len);
        copy[0] ^= 0xff;
        assert_int_equal(store_record_decode(copy, len, &out), -EBADMSG);

        /* A string without its NUL: the identity's last byte is its NUL ("d\0"). */
        memcpy(copy, v, len);
        for (size_t i = 0; i + 1 < len; i++)
                if (copy[i] == 'd' && copy[i + 1] == 0) {
                        copy[i + 1] = 'x';
                        break;
                }
        assert_int_equal(store_record_decode(copy, len, &out), -EBADMSG);
        frame_builder_deinit(&b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_roundtrip),
                cmocka_unit_test(test_bad_records),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
