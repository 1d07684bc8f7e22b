/* Unit tests: in-order delivery with a window, on a real store */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "hub-store/sender.h"
#include "hub-store/test-util.h"
#include "proto/runtime/log.h"

typedef struct Fixture {
        char *dir;
        Store *store;
        StoreStream *stream;
        Sender sender;

        /* The fake upstream. */
        int next_mid;
        size_t n_published;
        int mids[1024];
        unsigned payloads[1024];
        int fail_with;          /* publish returns this when non-zero */
        unsigned poison;        /* payload number that can never be sent (0: none) */
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        StoreOptions o = { .max_bytes = 1u << 30, .overflow = OVERFLOW_DROP_OLDEST };

        log_set_max_level(LOG_ERR);
        f->dir = test_mkdtemp();
        assert_non_null(f->dir);
        assert_int_equal(store_open(f->dir, &o, &f->store, NULL), 0);
        assert_int_equal(store_stream_get(f->store, STORE_ENDPOINT_UPSTREAM, 0, "d", &f->stream), 0);
        sender_init(&f->sender, f->store, f->stream, 10000);
        f->next_mid = 1;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        store_free(f->store);
        test_rmdir(f->dir);
        free(f->dir);
        free(f);
        return 0;
}

static void append(Fixture *f, unsigned n, uint64_t time_ms) {
        char payload[16];
        int len = snprintf(payload, sizeof(payload), "%u", n);
        StoreMessage m = {
                .time_ms = time_ms,
                .identity = "d",
                .properties = "",
                .payload = (const uint8_t *) payload,
                .payload_len = (size_t) len,
        };
        assert_int_equal(store_append(f->store, f->stream, &m, NULL), 0);
}

static int fake_publish(void *userdata, const StoreRecord *r, int *ret_mid) {
        Fixture *f = userdata;
        char buf[16];

        if (f->fail_with)
                return f->fail_with;
        snprintf(buf, sizeof(buf), "%.*s", (int) r->message.payload_len, r->message.payload);
        unsigned n = (unsigned) strtoul(buf, NULL, 10);
        if (f->poison && n == f->poison)
                return -EBADMSG;
        assert_true(f->n_published < 1024);
        f->payloads[f->n_published] = n;
        f->mids[f->n_published] = f->next_mid;
        f->n_published++;
        *ret_mid = f->next_mid++;
        return 0;
}

static void test_window_and_order(void **state) {
        Fixture *f = *state;

        for (unsigned i = 0; i < 100; i++)
                append(f, i, 1000);

        /* The window fills in order, no further. */
        assert_int_equal(sender_fill(&f->sender, 1000, fake_publish, f), (int) SENDER_WINDOW);
        assert_int_equal(sender_in_flight(&f->sender), SENDER_WINDOW);
        assert_int_equal(sender_fill(&f->sender, 1000, fake_publish, f), 0);
        for (unsigned i = 0; i < SENDER_WINDOW; i++)
                assert_int_equal(f->payloads[i], i);

        /* Acks (even out of order) remove and make room for the next ones, still in order. */
        assert_int_equal(sender_ack(&f->sender, f->mids[1]), 0);
        assert_int_equal(sender_ack(&f->sender, f->mids[0]), 0);
        assert_int_equal(sender_ack(&f->sender, 9999), -ENOENT);
        assert_int_equal(f->stream->messages, 98);
        assert_int_equal(f->stream->delivered, 2);
        /* Not refilled one by one: only once half the window is free (one read for many records). */
        assert_int_equal(sender_fill(&f->sender, 1000, fake_publish, f), 0);
        size_t acked = 2;
        for (; sender_in_flight(&f->sender) > SENDER_REFILL_BELOW; acked++)
                assert_int_equal(sender_ack(&f->sender, f->mids[acked]), 0);
        assert_int_equal(sender_fill(&f->sender, 1000, fake_publish, f), (int) (SENDER_WINDOW - SENDER_REFILL_BELOW));
        for (unsigned i = SENDER_WINDOW; i < 2 * SENDER_WINDOW - SENDER_REFILL_BELOW; i++)
                assert_int_equal(f->payloads[i], i);

        /* Drain everything. */
        while (f->stream->messages > 0) {
                size_t n = f->n_published;
                for (; acked < n; acked++)
                        assert_int_equal(sender_ack(&f->sender, f->mids[acked]), 0);
                (void) sender_fill(&f->sender, 1000, fake_publish, f);
        }
        assert_int_equal(f->n_published, 100);
        for (unsigned i = 0; i < 100; i++)
                assert_int_equal(f->payloads[i], i);
        assert_int_equal(f->stream->delivered, 100);
        assert_false(sender_has_more(&f->sender));
}

/* A lost link: everything in flight is sent again, in the same order, nothing skipped. */
static void test_reset_resends_window(void **state) {
        Fixture *f = *state;

        for (unsigned i = 0; i < 10; i++)
                append(f, i, 1000);
        assert_int_equal(sender_fill(&f->sender, 1000, fake_publish, f), 10);
        assert_int_equal(sender_ack(&f->sender, f->mids[0]), 0);
        assert_int_equal(sender_ack(&f->sender, f->mids[2]), 0);

        sender_reset(&f->sender);
        f->n_published = 0;
        assert_int_equal(sender_fill(&f->sender, 1000, fake_publish, f), 8);
        static const unsigned want[] = { 1, 3, 4, 5, 6, 7, 8, 9 };
        for (unsigned i = 0; i < 8; i++)
                assert_int_equal(f->payloads[i], want[i]);
        /* A late ack of the old connection is unknown now. */
        assert_int_equal(sender_ack(&f->sender, 3), -ENOENT);
}

static void test_ttl_at_send(void **state) {
        Fixture *f = *state;

        /* TTL 10 s; at 20 s the first five are too old. */
        for (unsigned i = 0; i < 5; i++)
                append(f, i, 1000 + i);
        for (unsigned i = 5; i < 8; i++)
                append(f, i, 15000);
        assert_int_equal(sender_fill(&f->sender, 20000, fake_publish, f), 3);
        assert_int_equal(f->payloads[0], 5);
        assert_int_equal(f->stream->expired, 5);
        assert_int_equal(f->stream->messages, 3);
}

static void test_poison_and_errors(void **state) {
        Fixture *f = *state;

        for (unsigned i = 1; i <= 5; i++)
                append(f, i, 1000);

        /* A transient error publishes nothing and keeps everything. */
        f->fail_with = -ENOMEM;
        assert_int_equal(sender_fill(&f->sender, 1000, fake_publish, f), -ENOMEM);
        assert_int_equal(f->stream->messages, 5);
        assert_int_equal(sender_in_flight(&f->sender), 0);

        /* A record that can never be sent is dropped (counted), the rest go. */
        f->fail_with = 0;
        f->poison = 2;
        assert_int_equal(sender_fill(&f->sender, 1000, fake_publish, f), 4);
        assert_int_equal(f->stream->dropped, 1);
        assert_int_equal(f->payloads[0], 1);
        assert_int_equal(f->payloads[1], 3);
}

/* Dropped or expired while in flight: the late ack counts nothing twice. */
static void test_removed_while_in_flight(void **state) {
        Fixture *f = *state;

        for (unsigned i = 0; i < 3; i++)
                append(f, i, 1000);
        assert_int_equal(sender_fill(&f->sender, 1000, fake_publish, f), 3);
        assert_int_equal(store_expire(f->store, 3000, 1000, 100), 0);
        assert_int_equal(f->stream->expired, 3);
        assert_int_equal(f->stream->messages, 0);
        for (unsigned i = 0; i < 3; i++)
                assert_int_equal(sender_ack(&f->sender, f->mids[i]), 0);
        assert_int_equal(f->stream->delivered, 0);
        assert_int_equal(store_messages(f->store), 0);
        assert_int_equal(store_bytes(f->store), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_window_and_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reset_resends_window, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ttl_at_send, setup, teardown),
                cmocka_unit_test_setup_teardown(test_poison_and_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_removed_while_in_flight, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
