/* Unit tests: frame building and parsing */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/ipc/frame.h"
#include "proto/ipc/wire.h"
#include "proto/util/cleanup.h"

static void test_round_trip(void **state) {
        FrameBuilder b = FRAME_BUILDER_NULL;
        Frame f;
        char *s = NULL;
        uint64_t u64;
        uint32_t u32;

        frame_builder_init(&b, WIRE_STORE_REQUEST);
        frame_builder_add_string(&b, WIRE_IDENTITY, "dev-1");
        frame_builder_add(&b, WIRE_PAYLOAD, "\0\1\2", 3);
        frame_builder_add_u64(&b, WIRE_CONNECTED, UINT64_C(0x0102030405060708));
        frame_builder_add_u32(&b, WIRE_STATUS, 7);
        frame_builder_add(&b, WIRE_PROPERTIES, NULL, 0);
        assert_int_equal(frame_builder_finish(&b), 0);

        uint32_t len;
        assert_int_equal(frame_header_parse(b.buf, &len), 0);
        assert_int_equal(len, b.len - FRAME_HEADER_SIZE);
        assert_int_equal(frame_parse(&f, b.buf + FRAME_HEADER_SIZE, len), 0);
        assert_int_equal(f.type, WIRE_STORE_REQUEST);
        assert_int_equal(f.n_fields, 5);
        assert_int_equal(frame_get_string(&f, WIRE_IDENTITY, &s), 0);
        assert_string_equal(s, "dev-1");
        free(s);
        /* An embedded NUL is not a string. */
        assert_int_equal(frame_get_string(&f, WIRE_PAYLOAD, &s), -EBADMSG);
        assert_int_equal(frame_get_u64(&f, WIRE_CONNECTED, &u64), 0);
        assert_true(u64 == UINT64_C(0x0102030405060708));
        assert_int_equal(frame_get_u32(&f, WIRE_STATUS, &u32), 0);
        assert_int_equal(u32, 7);
        assert_int_equal(frame_get_u32(&f, WIRE_CONNECTED, &u32), -EBADMSG);
        assert_int_equal(frame_get_u32(&f, WIRE_JSON, &u32), -ENOENT);
        assert_non_null(frame_get(&f, WIRE_PROPERTIES));
        assert_int_equal(frame_get(&f, WIRE_PROPERTIES)->len, 0);
        frame_builder_deinit(&b);
}

static void test_malformed(void **state) {
        static const struct {
                const char *name;
                const char *body;
                size_t len;
        } cases[] = {
                { "empty", "", 0 },
                { "half a type", "\x00", 1 },
                { "truncated field header", "\x00\x01\x00\x01\x00\x00", 6 },
                { "field overruns body", "\x00\x01\x00\x01\x00\x00\x00\x05" "ab", 10 },
                { "huge field length", "\x00\x01\x00\x01\xff\xff\xff\xff", 8 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Frame f;
                if (frame_parse(&f, (const uint8_t *) cases[i].body, cases[i].len) != -EBADMSG)
                        fail_msg("case '%s' was accepted", cases[i].name);
        }

        /* Too many fields. */
        uint8_t body[2 + 6 * (FRAME_FIELDS_MAX + 1)] = {};
        Frame f;
        assert_int_equal(frame_parse(&f, body, sizeof(body)), -EBADMSG);
        assert_int_equal(frame_parse(&f, body, sizeof(body) - 6), 0);
        assert_int_equal(f.n_fields, FRAME_FIELDS_MAX);

        /* Length prefix limits. */
        uint32_t len;
        assert_int_equal(frame_header_parse((const uint8_t *) "\x00\x10\x00\x01", &len), -EBADMSG);
        assert_int_equal(frame_header_parse((const uint8_t *) "\x00\x00\x00\x01", &len), -EBADMSG);
        assert_int_equal(frame_header_parse((const uint8_t *) "\x00\x00\x00\x02", &len), 0);
}

static void test_builder_limits(void **state) {
        FrameBuilder b = FRAME_BUILDER_NULL;
        _cleanup_free_ char *big = calloc(1, FRAME_BODY_MAX);

        assert_non_null(big);
        frame_builder_init(&b, 1);
        frame_builder_add(&b, 2, big, FRAME_BODY_MAX);
        assert_int_equal(frame_builder_finish(&b), -EMSGSIZE);
        frame_builder_deinit(&b);

        /* Finishing a builder that was never initialised is an error, not a crash. */
        assert_int_equal(frame_builder_finish(&b), -EINVAL);
}

static void test_send_recv(void **state) {
        int sv[2];
        FrameBuilder b = FRAME_BUILDER_NULL;
        uint8_t *body = NULL;
        size_t len;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        frame_builder_init(&b, WIRE_CONTROL_REQUEST);
        frame_builder_add_string(&b, WIRE_COMMAND, "status");
        assert_int_equal(frame_builder_finish(&b), 0);
        assert_int_equal(frame_send(sv[0], b.buf, b.len, now_usec() + 1000000), 0);
        assert_int_equal(frame_recv(sv[1], &body, &len, now_usec() + 1000000), 0);
        assert_int_equal(len, b.len - FRAME_HEADER_SIZE);
        assert_memory_equal(body, b.buf + FRAME_HEADER_SIZE, len);
        free(body);

        /* Nothing more to read: the deadline passes. */
        assert_int_equal(frame_recv(sv[1], &body, &len, now_usec() + 20000), -ETIMEDOUT);
        /* The peer closes: reset. */
        close(sv[0]);
        assert_int_equal(frame_recv(sv[1], &body, &len, now_usec() + 1000000), -ECONNRESET);
        close(sv[1]);
        frame_builder_deinit(&b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_builder_limits),
                cmocka_unit_test(test_send_recv),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
