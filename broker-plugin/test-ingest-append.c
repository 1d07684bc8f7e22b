/* Unit tests: the plugin's ingest-log append and its room check (reject_new) */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker-plugin/ingest-append.h"
#include "proto/runtime/log.h"

static char root[] = "/tmp/test-ingest-append-XXXXXX";

static void path(char *buf, size_t n, const char *rel) {
        snprintf(buf, n, "%s/%s", root, rel);
}

static void test_append_and_full(void **state) {
        IngestAppend a = INGEST_APPEND_NULL;
        char ingest[256], cmd[512], room_path[256];
        IngestRoom *room;

        log_set_max_level(LOG_ERR);
        assert_non_null(mkdtemp(root));
        path(ingest, sizeof(ingest), "ingest");
        path(room_path, sizeof(room_path), INGEST_ROOM_FILE);

        /* Without the storage folder the plugin refuses to start; the ingest folder it makes itself. */
        snprintf(cmd, sizeof(cmd), "%s/missing", root);
        assert_int_equal(ingest_append_init(&a, cmd, root, true, true), -ENOENT);
        assert_int_equal(ingest_append_init(&a, root, root, true, true), 0);
        struct stat st;
        assert_int_equal(stat(ingest, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);

        assert_int_equal(ingest_append(&a, "dev", "a=1", "x", 1, NULL), 0);

        /*
         * hub-store's room says the store is full (no room after a position
         * that is not ours), seen once the file is looked for again (every
         * 100 ms until it exists); then it says drop_oldest-like "anything".
         */
        assert_int_equal(ingest_room_create(room_path, &room), 0);
        ingest_room_publish(room, "", 0, 0);
        usleep(INGEST_FULL_CHECK_USEC + 10000);
        assert_int_equal(ingest_append(&a, "dev", "", "y", 1, NULL), -ENOBUFS);
        ingest_room_publish(room, "", 0, UINT64_MAX);
        assert_int_equal(ingest_append(&a, "dev", "", "z", 1, NULL), 0);
        ingest_append_deinit(&a);
        (void) munmap(room, sizeof(*room));
        assert_int_equal(unlink(room_path), 0);

        /*
         * hub-store's room: 2 records of this size fit after its import
         * position; what we wrote after that position counts against it.
         */
        size_t n = ingest_record_size("dev", "", 1, NULL);
        uint64_t size;
        path(room_path, sizeof(room_path), INGEST_ROOM_FILE);
        assert_int_equal(ingest_room_create(room_path, &room), 0);
        assert_int_equal(ingest_append_init(&a, root, root, true, false), 0);
        assert_int_equal(ingest_append(&a, "dev", "", "a", 1, NULL), 0); /* no room published yet: allowed */
        const char *seg = ingest_writer_segment(a.writer, &size);
        assert_non_null(seg);
        ingest_room_publish(room, seg, size, 2 * n); /* everything so far imported */
        assert_int_equal(ingest_append(&a, "dev", "", "b", 1, NULL), 0);
        assert_int_equal(ingest_append(&a, "dev", "", "c", 1, NULL), 0);
        assert_int_equal(ingest_append(&a, "dev", "", "d", 1, NULL), -ENOBUFS);
        /* The importer caught up: room again for one. */
        seg = ingest_writer_segment(a.writer, &size);
        ingest_room_publish(room, seg, size, n);
        assert_int_equal(ingest_append(&a, "dev", "", "d", 1, NULL), 0);
        assert_int_equal(ingest_append(&a, "dev", "", "e", 1, NULL), -ENOBUFS);
        /* A position in a segment that is not ours: all we wrote counts. */
        ingest_room_publish(room, "00000000000000000001-1.log", 0, 4 * n);
        assert_int_equal(ingest_append(&a, "dev", "", "e", 1, NULL), -ENOBUFS);
        ingest_room_publish(room, "00000000000000000001-1.log", 0, 5 * n);
        assert_int_equal(ingest_append(&a, "dev", "", "e", 1, NULL), 0);
        ingest_append_deinit(&a);

        /* drop_oldest ignores the room, even one that says full. */
        ingest_room_publish(room, "", 0, 0);
        assert_int_equal(ingest_append_init(&a, root, root, false, false), 0);
        assert_int_equal(ingest_append(&a, "dev", "", "w", 1, NULL), 0);
        ingest_append_deinit(&a);
        (void) munmap(room, sizeof(*room));

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        assert_int_equal(system(cmd), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_append_and_full),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
