/* Unit tests: the message store on a real RocksDB in a scratch folder */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <unistd.h>

#include "hub-store/store.h"
#include "hub-store/test-util.h"
#include "proto/runtime/log.h"
#include "proto/store/kv.h"
#include "proto/util/cleanup.h"

typedef struct Fixture {
        char *dir;
        Store *store;
} Fixture;

static StoreOptions options(uint64_t max_bytes, OverflowPolicy overflow) {
        return (StoreOptions) { .max_bytes = max_bytes, .overflow = overflow };
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        StoreOptions o = options(1u << 30, OVERFLOW_DROP_OLDEST);

        log_set_max_level(LOG_ERR);
        f->dir = test_mkdtemp();
        assert_non_null(f->dir);
        assert_int_equal(store_open(f->dir, &o, &f->store, NULL), 0);
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

static void reopen(Fixture *f, StoreOptions o) {
        f->store = store_free(f->store);
        assert_int_equal(store_open(f->dir, &o, &f->store, NULL), 0);
}

static StoreStream *stream(Fixture *f, const char *identity) {
        StoreStream *st;

        assert_int_equal(store_stream_get(f->store, STORE_ENDPOINT_UPSTREAM, 0, identity, &st), 0);
        return st;
}

/* Appends a message whose payload is "identity:n" and returns its seq. */
static int append(Fixture *f, const char *identity, unsigned n, uint64_t time_ms, uint64_t *ret_seq) {
        char payload[64];
        int len = snprintf(payload, sizeof(payload), "%s:%03u", identity, n);
        StoreMessage m = {
                .time_ms = time_ms,
                .identity = identity,
                .properties = "a=1",
                .payload = (const uint8_t *) payload,
                .payload_len = (size_t) len,
        };
        return store_append(f->store, stream(f, identity), &m, ret_seq);
}

typedef struct Collected {
        size_t n;
        uint64_t seq[64];
        size_t size[64];
        char payload[64][64];
} Collected;

static int collect(void *userdata, const StoreRecord *r) {
        Collected *c = userdata;

        if (c->n >= 64)
                return 1;
        c->seq[c->n] = r->seq;
        c->size[c->n] = r->size;
        snprintf(c->payload[c->n], sizeof(c->payload[0]), "%.*s", (int) r->message.payload_len, r->message.payload);
        c->n++;
        return 0;
}

static Collected read_all(Fixture *f, const char *identity) {
        Collected c = {};

        assert_true(store_read(f->store, stream(f, identity), 0, 64, collect, &c) >= 0);
        return c;
}

static void test_append_order(void **state) {
        Fixture *f = *state;
        uint64_t seq, last = 0;

        /* Interleaved senders: each reads back only its own, in order. */
        for (unsigned i = 0; i < 10; i++) {
                assert_int_equal(append(f, "a", i, 1000 + i, &seq), 0);
                assert_true(seq > last);
                last = seq;
                assert_int_equal(append(f, "a/m", i, 1000 + i, &seq), 0);
                assert_int_equal(append(f, "a0", i, 1000 + i, &seq), 0);
        }
        static const char *const ids[] = { "a", "a/m", "a0" };
        for (size_t k = 0; k < 3; k++) {
                Collected c = read_all(f, ids[k]);
                assert_int_equal(c.n, 10);
                for (unsigned i = 0; i < 10; i++) {
                        char want[64];
                        snprintf(want, sizeof(want), "%s:%03u", ids[k], i);
                        assert_string_equal(c.payload[i], want);
                        if (i > 0)
                                assert_true(c.seq[i] > c.seq[i - 1]);
                }
                StoreStream *st = stream(f, ids[k]);
                assert_int_equal(st->messages, 10);
                assert_int_equal(st->received, 10);
                assert_int_equal(st->head_seq, c.seq[0]);
                assert_int_equal(st->tail_seq, c.seq[9]);
                assert_int_equal(st->head_time_ms, 1000);
        }
        assert_int_equal(store_messages(f->store), 30);
        assert_int_equal(store_oldest_time_ms(f->store), 1000);

        /* Reading from the middle, and a bounded number. */
        Collected all = read_all(f, "a"), part = {};
        assert_int_equal(store_read(f->store, stream(f, "a"), all.seq[4], 3, collect, &part), 3);
        assert_int_equal(part.seq[0], all.seq[4]);
        assert_int_equal(part.seq[2], all.seq[6]);
}

static void test_remove(void **state) {
        Fixture *f = *state;
        StoreStream *st = stream(f, "d");
        uint64_t seq[5];

        for (unsigned i = 0; i < 5; i++)
                assert_int_equal(append(f, "d", i, 100 + i, &seq[i]), 0);
        Collected c = read_all(f, "d");
        uint64_t bytes = st->bytes;

        /* Out of order (acks may be), then the head: the head moves past both. */
        assert_int_equal(store_remove(f->store, st, seq[1], c.size[1], STORE_REMOVE_DELIVERED), 0);
        assert_int_equal(st->head_seq, seq[0]);
        assert_int_equal(store_remove(f->store, st, seq[0], c.size[0], STORE_REMOVE_DELIVERED), 0);
        /* Moved past the removed one without a lookup; exact once asked for. */
        assert_true(st->head_seq > seq[0] && st->head_seq <= seq[2]);
        assert_int_equal(store_stream_head_time_ms(f->store, st), 102);
        assert_int_equal(st->head_seq, seq[2]);
        assert_int_equal(st->messages, 3);
        assert_int_equal(st->bytes, bytes - c.size[0] - c.size[1]);
        assert_int_equal(st->delivered, 2);
        assert_int_equal(store_bytes(f->store), st->bytes);

        /* Already gone: not counted twice. */
        assert_int_equal(store_remove(f->store, st, seq[0], c.size[0], STORE_REMOVE_DELIVERED), -ENOENT);
        assert_int_equal(st->delivered, 2);

        assert_int_equal(store_remove(f->store, st, seq[2], c.size[2], STORE_REMOVE_EXPIRED), 0);
        assert_int_equal(store_remove(f->store, st, seq[4], c.size[4], STORE_REMOVE_DROPPED), 0);
        assert_int_equal(store_remove(f->store, st, seq[3], c.size[3], STORE_REMOVE_DELIVERED), 0);
        assert_int_equal(st->messages, 0);
        assert_int_equal(st->bytes, 0);
        assert_int_equal(st->delivered, 3);
        assert_int_equal(st->expired, 1);
        assert_int_equal(st->dropped, 1);
        assert_int_equal(read_all(f, "d").n, 0);
        assert_int_equal(store_messages(f->store), 0);
        assert_int_equal(store_bytes(f->store), 0);
        assert_int_equal(store_oldest_time_ms(f->store), 0);
}

static void test_restart_recovery(void **state) {
        Fixture *f = *state;
        uint64_t seq, max = 0;

        for (unsigned i = 0; i < 20; i++) {
                assert_int_equal(append(f, i % 2 ? "odd" : "even", i, 5000 + i, &seq), 0);
                max = seq;
        }
        Collected c = read_all(f, "even");
        assert_int_equal(store_remove(f->store, stream(f, "even"), c.seq[0], c.size[0], STORE_REMOVE_DELIVERED), 0);
        uint64_t bytes = store_bytes(f->store);
        (void) store_stream_head_time_ms(f->store, stream(f, "even"));
        StoreStream before_odd = *stream(f, "odd");
        StoreStream before_even = *stream(f, "even");

        reopen(f, options(1u << 30, OVERFLOW_DROP_OLDEST));

        assert_int_equal(store_messages(f->store), 19);
        assert_int_equal(store_bytes(f->store), bytes);
        StoreStream *odd = store_stream_find(f->store, STORE_ENDPOINT_UPSTREAM, 0, "odd");
        StoreStream *even = store_stream_find(f->store, STORE_ENDPOINT_UPSTREAM, 0, "even");
        assert_non_null(odd);
        assert_non_null(even);
        assert_int_equal(odd->messages, 10);
        assert_int_equal(odd->bytes, before_odd.bytes);
        assert_int_equal(odd->head_seq, before_odd.head_seq);
        assert_int_equal(odd->head_time_ms, 5001);
        assert_int_equal(odd->tail_seq, before_odd.tail_seq);
        assert_int_equal(even->messages, 9);
        assert_int_equal(even->head_seq, before_even.head_seq);
        assert_int_equal(even->head_time_ms, 5002);

        /* The next seq continues after the largest stored one. */
        assert_int_equal(append(f, "new", 0, 9000, &seq), 0);
        assert_true(seq > max);
        assert_int_equal(store_messages(f->store), 20);

        /* Another restart finds the same streams. */
        reopen(f, options(1u << 30, OVERFLOW_DROP_OLDEST));
        assert_int_equal(store_n_streams(f->store), 3);
}

/* Size of one test record in the store (key + value). */
static uint64_t record_size(Fixture *f) {
        Collected c = read_all(f, "x");
        assert_true(c.n > 0);
        return c.size[0];
}

static void test_budget_drop_oldest(void **state) {
        Fixture *f = *state;
        uint64_t seq;

        /* Learn a record's size, then allow exactly 10 of them. */
        assert_int_equal(append(f, "x", 0, 1, &seq), 0);
        uint64_t size = record_size(f);
        Collected c = read_all(f, "x");
        assert_int_equal(store_remove(f->store, stream(f, "x"), c.seq[0], c.size[0], STORE_REMOVE_DELIVERED), 0);
        reopen(f, options(10 * size, OVERFLOW_DROP_OLDEST));

        /* 10 fit, alternating senders ("x" and "y" have equally long payloads). */
        for (unsigned i = 0; i < 10; i++)
                assert_int_equal(append(f, i % 2 ? "y" : "x", i, 100 + i, &seq), 0);
        assert_int_equal(store_bytes(f->store), 10 * size);

        /* Three more: the three globally oldest go (x:0, y:1, x:2), nothing else. */
        for (unsigned i = 10; i < 13; i++)
                assert_int_equal(append(f, "x", i, 100 + i, &seq), 0);
        assert_int_equal(store_messages(f->store), 10);
        assert_true(store_bytes(f->store) <= 10 * size);
        StoreStream *x = stream(f, "x"), *y = stream(f, "y");
        assert_int_equal(x->dropped + y->dropped, 3);
        assert_int_equal(x->dropped, 2);
        assert_int_equal(y->dropped, 1);
        assert_int_equal(x->rejected + y->rejected, 0);

        Collected cx = read_all(f, "x"), cy = read_all(f, "y");
        assert_int_equal(cx.n, 6);
        assert_string_equal(cx.payload[0], "x:004");
        assert_string_equal(cx.payload[5], "x:012");
        assert_int_equal(cy.n, 4);
        assert_string_equal(cy.payload[0], "y:003");
        assert_int_equal(y->head_time_ms, 103);

        /* Reopen agrees with the running counters. */
        uint64_t bytes = store_bytes(f->store);
        reopen(f, options(10 * size, OVERFLOW_DROP_OLDEST));
        assert_int_equal(store_messages(f->store), 10);
        assert_int_equal(store_bytes(f->store), bytes);
}

static void test_budget_reject_new(void **state) {
        Fixture *f = *state;
        uint64_t seq;

        assert_int_equal(append(f, "x", 0, 1, &seq), 0);
        uint64_t size = record_size(f);
        reopen(f, options(3 * size, OVERFLOW_REJECT_NEW));

        assert_int_equal(append(f, "x", 1, 2, &seq), 0);
        assert_int_equal(append(f, "x", 2, 3, &seq), 0);
        assert_int_equal(append(f, "x", 3, 4, &seq), -ENOBUFS);
        assert_int_equal(append(f, "y", 4, 5, &seq), -ENOBUFS);
        StoreStream *x = stream(f, "x"), *y = stream(f, "y");
        assert_int_equal(x->rejected, 1);
        assert_int_equal(y->rejected, 1);
        assert_int_equal(x->dropped, 0);
        assert_int_equal(store_messages(f->store), 3);
        Collected c = read_all(f, "x");
        assert_string_equal(c.payload[0], "x:000");

        /* Room again after a delivery. */
        assert_int_equal(store_remove(f->store, x, c.seq[0], c.size[0], STORE_REMOVE_DELIVERED), 0);
        assert_int_equal(append(f, "x", 5, 6, &seq), 0);
}

static void test_oversize(void **state) {
        Fixture *f = *state;
        static uint8_t big[4096];
        StoreMessage m = { .time_ms = 1, .identity = "x", .properties = "", .payload = big, .payload_len = sizeof(big) };
        uint64_t seq;

        for (int policy = 0; policy < _OVERFLOW_POLICY_MAX; policy++) {
                reopen(f, options(1024, (OverflowPolicy) policy));
                assert_int_equal(append(f, "x", 0, 1, &seq), 0);
                /* Larger than the whole budget: refused, and nothing is dropped for it. */
                assert_int_equal(store_append(f->store, stream(f, "x"), &m, &seq), -ENOBUFS);
                assert_int_equal(stream(f, "x")->rejected, 1);
                assert_int_equal(stream(f, "x")->dropped, 0);
                assert_int_equal(store_messages(f->store), policy == 0 ? 1 : 2);
        }

        /* Larger than a frame can carry: refused too, not a crash. */
        uint8_t *huge = calloc(1, FRAME_BODY_MAX + 1);
        assert_non_null(huge);
        reopen(f, options(UINT64_MAX / 2, OVERFLOW_DROP_OLDEST));
        m.payload = huge;
        m.payload_len = FRAME_BODY_MAX + 1;
        assert_int_equal(store_append(f->store, stream(f, "x"), &m, &seq), -ENOBUFS);
        free(huge);
}

static void test_ttl_expiry(void **state) {
        Fixture *f = *state;
        uint64_t seq;

        for (unsigned i = 0; i < 30; i++)
                assert_int_equal(append(f, i % 3 ? "old" : "mixed", i, 1000 + i, &seq), 0);
        for (unsigned i = 0; i < 5; i++)
                assert_int_equal(append(f, "mixed", 100 + i, 5000 + i, &seq), 0);
        assert_int_equal(store_messages(f->store), 35);

        /* Slices: at most 7 per call, more remain. */
        assert_int_equal(store_expire(f->store, 3000, 1000, 7), 1);
        assert_int_equal(store_messages(f->store), 28);
        int r;
        unsigned calls = 0;
        while ((r = store_expire(f->store, 3000, 1000, 7)) > 0)
                calls++;
        assert_int_equal(r, 0);
        assert_true(calls <= 4);

        StoreStream *old = stream(f, "old"), *mixed = stream(f, "mixed");
        assert_int_equal(old->messages, 0);
        assert_int_equal(old->expired, 20);
        assert_int_equal(mixed->messages, 5);
        assert_int_equal(mixed->expired, 10);
        assert_int_equal(mixed->head_time_ms, 5000);
        assert_int_equal(store_messages(f->store), 5);
        Collected c = read_all(f, "mixed");
        assert_int_equal(c.n, 5);
        assert_string_equal(c.payload[0], "mixed:100");

        /* Nothing left to expire: a no-op. */
        assert_int_equal(store_expire(f->store, 3000, 1000, 7), 0);
        assert_int_equal(store_messages(f->store), 5);

        /* Survives a restart. */
        reopen(f, options(1u << 30, OVERFLOW_DROP_OLDEST));
        assert_int_equal(store_messages(f->store), 5);
        store_compact_some(f->store);
}

/* A reopen (after a write failure) recounts in place: streams stay valid, nothing is lost. */
static void test_reopen_in_place(void **state) {
        Fixture *f = *state;
        uint64_t seq, last = 0;

        for (unsigned i = 0; i < 10; i++) {
                assert_int_equal(append(f, i % 2 ? "a" : "b", i, 100 + i, &seq), 0);
                last = seq;
        }
        StoreStream *a = stream(f, "a");
        Collected c = read_all(f, "a");
        assert_int_equal(store_remove(f->store, a, c.seq[0], c.size[0], STORE_REMOVE_DELIVERED), 0);
        uint64_t bytes = store_bytes(f->store), delivered = a->delivered;

        assert_false(store_is_broken(f->store));
        assert_int_equal(store_reopen(f->store, NULL), 0);
        assert_ptr_equal(stream(f, "a"), a);
        assert_int_equal(a->messages, 4);
        assert_int_equal(a->head_seq, c.seq[1]);
        assert_int_equal(a->delivered, delivered);
        assert_int_equal(store_messages(f->store), 9);
        assert_int_equal(store_bytes(f->store), bytes);
        assert_int_equal(append(f, "a", 99, 999, &seq), 0);
        assert_true(seq > last);
}

static void test_sync(void **state) {
        Fixture *f = *state;
        uint64_t seq;

        assert_int_equal(store_sync(f->store), 0);
        assert_int_equal(append(f, "x", 0, 1, &seq), 0);
        assert_int_equal(store_sync(f->store), 0);
        assert_true(store_disk_bytes(f->store) > 0);
}

/* The ingest log's records were acknowledged already: reject_new must store them over the budget. */
static void test_append_acknowledged(void **state) {
        Fixture *f = *state;
        uint64_t seq;

        assert_int_equal(append(f, "x", 0, 1, &seq), 0);
        uint64_t size = record_size(f);
        reopen(f, options(2 * size, OVERFLOW_REJECT_NEW));
        assert_int_equal(append(f, "x", 1, 2, &seq), 0);
        assert_int_equal(append(f, "x", 2, 3, &seq), -ENOBUFS);

        StoreMessage m = { .time_ms = 4, .identity = "x", .properties = "", .payload = (const uint8_t *) "x:003",
                           .payload_len = 5 };
        assert_int_equal(store_append_acknowledged(f->store, stream(f, "x"), &m, &seq), 0);
        assert_int_equal(store_messages(f->store), 3);
        assert_true(store_bytes(f->store) > store_max_bytes(f->store));
        Collected c = read_all(f, "x");
        assert_int_equal(c.n, 3);
        assert_string_equal(c.payload[2], "x:003");
}

/* Named values live outside the message keys: not counted, not scanned as records, kept across restarts. */
static void test_meta(void **state) {
        Fixture *f = *state;
        void *val = NULL;
        size_t len = 0;
        uint64_t v = 42, seq;

        assert_int_equal(store_meta_get(f->store, "ingest/a", &val, &len), -ENOENT);
        assert_int_equal(store_meta_put(f->store, "ingest/a", &v, sizeof(v)), 0);
        assert_int_equal(append(f, "x", 0, 1, &seq), 0);
        reopen(f, options(1u << 30, OVERFLOW_DROP_OLDEST));
        assert_int_equal(store_messages(f->store), 1);
        assert_int_equal(store_meta_get(f->store, "ingest/a", &val, &len), 0);
        assert_int_equal(len, sizeof(v));
        assert_memory_equal(val, &v, sizeof(v));
        free(val);
        assert_int_equal(store_meta_delete(f->store, "ingest/a"), 0);
        assert_int_equal(store_meta_get(f->store, "ingest/a", &val, &len), -ENOENT);
        assert_int_equal(store_meta_put(f->store, "", &v, sizeof(v)), -EINVAL);
}

/* Moving the store (storageFolder): the copy holds every record and the meta, streams stay valid, the old one goes. */
static void test_checkpoint_switch(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *to = NULL, *bad = NULL, *old = strdup(f->dir);
        _cleanup_free_ char *error = NULL;
        uint64_t seq, last = 0, v = 7;
        void *val = NULL;
        size_t len = 0;

        for (unsigned i = 0; i < 10; i++) {
                assert_int_equal(append(f, i % 2 ? "a" : "b", i, 100 + i, &seq), 0);
                last = seq;
        }
        assert_int_equal(store_meta_put(f->store, "m", &v, sizeof(v)), 0);
        StoreStream *a = stream(f, "a");
        uint64_t bytes = store_bytes(f->store);
        assert_true(asprintf(&to, "%s/moved", f->dir) > 0);

        assert_int_equal(store_checkpoint(f->store, to, NULL), 0);
        assert_true(store_checkpoint(f->store, to, &error) < 0); /* never over an existing folder */
        assert_non_null(error);
        assert_int_equal(store_switch(f->store, to, NULL), 0);
        assert_string_equal(store_dir(f->store), to);
        assert_ptr_equal(stream(f, "a"), a);
        assert_int_equal(a->messages, 5);
        assert_int_equal(store_messages(f->store), 10);
        assert_int_equal(store_bytes(f->store), bytes);
        Collected c = read_all(f, "b");
        assert_int_equal(c.n, 5);
        assert_string_equal(c.payload[4], "b:008");
        assert_int_equal(store_meta_get(f->store, "m", &val, &len), 0);
        assert_memory_equal(val, &v, sizeof(v));
        free(val);
        assert_int_equal(append(f, "a", 99, 999, &seq), 0);
        assert_true(seq > last);

        /* A folder that cannot be opened: the store stays where it is, whole. */
        assert_true(asprintf(&bad, "%s/moved/CURRENT/x", f->dir) > 0);
        assert_true(store_switch(f->store, bad, NULL) < 0);
        assert_string_equal(store_dir(f->store), to);
        assert_int_equal(store_messages(f->store), 11);

        /* The old folder can go (closed, so RocksDB lets it). */
        assert_int_equal(kv_destroy(old, NULL), 0);
        assert_int_equal(store_messages(f->store), 11);
}

static int count_records(void *userdata, const StoreRecord *r) {
        (*(size_t *) userdata)++;
        return 0;
}

static int append_imported(Fixture *f, unsigned n) {
        static const char payload[1000] = { 'p' };
        StoreMessage m = {
                .time_ms = 1000 + n,
                .identity = "imp",
                .properties = "",
                .payload = (const uint8_t *) payload,
                .payload_len = sizeof(payload),
        };
        return store_append_from(f->store, stream(f, "imp"), &m, STORE_ORIGIN_INGEST, NULL);
}

/* A backlog nobody reads skips the WAL; its records wait for a flush before they are sent. */
static void test_unlogged_import(void **state) {
        Fixture *f = *state;
        uint64_t pos = 1, mark;
        size_t n = 0;

        /* Under 1 MiB stored: the WAL, and the position is durable at once. */
        assert_int_equal(store_import_begin(f->store), 0);
        for (unsigned i = 0; i < 1100; i++)
                assert_int_equal(append_imported(f, i), 0);
        assert_int_equal(store_meta_put_imported(f->store, "ingest/a", &pos, sizeof(pos), &mark), 0);
        assert_int_equal(mark, 0);

        /* Over it, nobody reading: the next pass skips the WAL, and its position must wait for a flush. */
        assert_int_equal(store_import_begin(f->store), 0);
        for (unsigned i = 1100; i < 1110; i++)
                assert_int_equal(append_imported(f, i), 0);
        pos = 2;
        assert_int_equal(store_meta_put_imported(f->store, "ingest/a", &pos, sizeof(pos), &mark), 0);
        assert_true(mark > 0);
        assert_false(store_mark_durable(f->store, mark));
        /* The mark is read from the table files only (kPersistedTier): the memtable holding it does not count. */
        assert_int_equal(store_unlogged_poll(f->store, false), 0);
        assert_false(store_mark_durable(f->store, mark));

        /* A reader gets the logged records only, and imports pause until the flush. */
        assert_int_equal(store_read(f->store, stream(f, "imp"), 0, 2000, count_records, &n), 1100);
        assert_int_equal(store_import_begin(f->store), -EAGAIN);
        int released = 0;
        for (unsigned k = 0; k < 500 && released == 0; k++) {
                released = store_unlogged_poll(f->store, false);
                assert_true(released >= 0);
                if (released == 0)
                        (void) usleep(10000);
        }
        assert_int_equal(released, 1);
        assert_true(store_mark_durable(f->store, mark));
        n = 0;
        assert_int_equal(store_read(f->store, stream(f, "imp"), 0, 2000, count_records, &n), 1110);

        /* Back to the WAL. */
        assert_int_equal(store_import_begin(f->store), 0);
        assert_int_equal(append_imported(f, 1110), 0);
        assert_int_equal(store_meta_put_imported(f->store, "ingest/a", &pos, sizeof(pos), &mark), 0);
        assert_int_equal(mark, 0);

        /* A reopen recounts everything, and sequence numbers go on past the mark. */
        reopen(f, options(1u << 30, OVERFLOW_DROP_OLDEST));
        assert_int_equal(store_messages(f->store), 1111);
}

static int remove_records(void *userdata, const StoreRecord *r) {
        Fixture *f = userdata;
        StoreStream *st = store_stream_find(f->store, STORE_ENDPOINT_UPSTREAM, 0, r->message.identity);

        assert_non_null(st);
        return store_remove(f->store, st, r->seq, r->size, STORE_REMOVE_DELIVERED);
}

/* A drained store gives its disk space back, though no single stream removed enough for its own compaction. */
static void test_compact_drained(void **state) {
        Fixture *f = *state;

        for (unsigned i = 0; i < 26000; i++) {
                assert_int_equal(append(f, "a", i, 1000, NULL), 0);
                assert_int_equal(append(f, "b", i, 1000, NULL), 0);
        }
        for (const char *id = "a"; id; id = strcmp(id, "a") == 0 ? "b" : NULL)
                while (stream(f, id)->messages > 0)
                        assert_true(store_read(f->store, stream(f, id), 0, 1000, remove_records, f) > 0);
        assert_int_equal(store_messages(f->store), 0);
        assert_true(store_disk_bytes(f->store) > 512u * 1024u);
        store_compact_some(f->store);
        assert_true(store_disk_bytes(f->store) < 64u * 1024u);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_append_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove, setup, teardown),
                cmocka_unit_test_setup_teardown(test_restart_recovery, setup, teardown),
                cmocka_unit_test_setup_teardown(test_budget_drop_oldest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_budget_reject_new, setup, teardown),
                cmocka_unit_test_setup_teardown(test_oversize, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ttl_expiry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reopen_in_place, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sync, setup, teardown),
                cmocka_unit_test_setup_teardown(test_append_acknowledged, setup, teardown),
                cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
                cmocka_unit_test_setup_teardown(test_checkpoint_switch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unlogged_import, setup, teardown),
                cmocka_unit_test_setup_teardown(test_compact_drained, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
