/* Unit tests: ingest-log writer, reader and record parser */
#include <dirent.h>
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

#include "proto/store/ingest-log.h"
#include "proto/util/cleanup.h"

typedef struct Segments {
        char names[8][INGEST_SEGMENT_NAME_MAX];
        size_t n;
} Segments;

static int cmp_names(const void *a, const void *b) {
        return strcmp(a, b);
}

static void list_segments(const char *dir, Segments *ret) {
        DIR *d = opendir(dir);
        struct dirent *de;

        assert_non_null(d);
        ret->n = 0;
        while ((de = readdir(d)))
                if (ingest_segment_name_is_valid(de->d_name)) {
                        assert_true(ret->n < ELEMENTSOF(ret->names));
                        assert_true(strlen(de->d_name) < INGEST_SEGMENT_NAME_MAX);
                        memcpy(ret->names[ret->n++], de->d_name, strlen(de->d_name) + 1);
                }
        closedir(d);
        qsort(ret->names, ret->n, INGEST_SEGMENT_NAME_MAX, cmp_names);
}

static int open_segment(const char *dir, const char *name) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        return fd;
}

static void remove_dir(const char *dir) {
        Segments s;
        char path[512];

        list_segments(dir, &s);
        for (size_t i = 0; i < s.n; i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, s.names[i]);
                unlink(path);
        }
        rmdir(dir);
}

static void test_round_trip(void **state) {
        char dir[] = "/tmp/test-ingest-XXXXXX";
        IngestWriter *w = NULL;
        IngestReader rd = INGEST_READER_NULL;
        IngestRecord rec = INGEST_RECORD_NULL;
        Segments s;
        size_t n;
        uint64_t off = 0;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(ingest_writer_open(dir, &w), 0);
        list_segments(dir, &s);
        assert_int_equal(s.n, 0);

        uint64_t size;
        assert_null(ingest_writer_segment(w, &size));
        assert_int_equal(ingest_writer_append(w, "dev-1", "a=1", "\0\1\2", 3, NULL, 1000), 0);
        assert_int_equal(ingest_writer_segment(w, &size) != NULL, 1);
        assert_int_equal(size, ingest_record_size("dev-1", "a=1", 3, NULL));
        assert_int_equal(ingest_writer_append(w, "dev-1/mod", "", "", 0, "out1", 2000), 0);
        assert_int_equal(ingest_writer_segment(w, &size) != NULL, 1);
        assert_int_equal(size, ingest_record_size("dev-1", "a=1", 3, NULL) + ingest_record_size("dev-1/mod", "", 0, "out1"));
        assert_int_equal(ingest_writer_sync(w), 0);

        list_segments(dir, &s);
        assert_int_equal(s.n, 1);
        assert_string_equal(ingest_writer_segment(w, &size), s.names[0]);
        _cleanup_close_ int fd = open_segment(dir, s.names[0]);

        assert_int_equal(ingest_reader_next(&rd, fd, off, &rec, &n), 0);
        assert_string_equal(rec.identity, "dev-1");
        assert_string_equal(rec.properties, "a=1");
        assert_null(rec.output);
        assert_int_equal(rec.payload_len, 3);
        assert_memory_equal(rec.payload, "\0\1\2", 3);
        assert_int_equal(rec.time_ms, 1000);
        ingest_record_deinit(&rec);
        off += n;

        assert_int_equal(ingest_reader_next(&rd, fd, off, &rec, &n), 0);
        assert_string_equal(rec.identity, "dev-1/mod");
        assert_string_equal(rec.properties, "");
        assert_string_equal(rec.output, "out1");
        assert_int_equal(rec.payload_len, 0);
        assert_int_equal(rec.time_ms, 2000);
        ingest_record_deinit(&rec);
        off += n;

        /* The end of the file: nothing yet. Then a record appended after the reader cached the file. */
        assert_int_equal(ingest_reader_next(&rd, fd, off, &rec, &n), -EAGAIN);
        assert_int_equal(ingest_writer_append(w, "dev-2", "", "x", 1, NULL, 3000), 0);
        assert_int_equal(ingest_reader_next(&rd, fd, off, &rec, &n), 0);
        assert_string_equal(rec.identity, "dev-2");
        ingest_record_deinit(&rec);

        ingest_reader_deinit(&rd);
        ingest_writer_free(w);
        remove_dir(dir);
}

static void test_torn_and_corrupt(void **state) {
        char dir[] = "/tmp/test-ingest-XXXXXX";
        IngestWriter *w = NULL;
        IngestReader rd = INGEST_READER_NULL;
        IngestRecord rec = INGEST_RECORD_NULL;
        Segments s;
        size_t n;
        struct stat st;
        char path[512];

        assert_non_null(mkdtemp(dir));
        assert_int_equal(ingest_writer_open(dir, &w), 0);
        assert_int_equal(ingest_writer_append(w, "dev-1", "", "hello", 5, NULL, 1), 0);
        list_segments(dir, &s);
        snprintf(path, sizeof(path), "%s/%s", dir, s.names[0]);
        assert_int_equal(stat(path, &st), 0);

        /* Every prefix of a record is incomplete, never a record. */
        _cleanup_close_ int fd = open_segment(dir, s.names[0]);
        uint8_t buf[256];
        assert_true((size_t) st.st_size <= sizeof(buf));
        assert_int_equal(pread(fd, buf, st.st_size, 0), st.st_size);
        for (size_t k = 0; k < (size_t) st.st_size; k++)
                assert_int_equal(ingest_record_parse(buf, k, &rec, &n), -EAGAIN);
        assert_int_equal(ingest_record_parse(buf, st.st_size, &rec, &n), 0);
        assert_int_equal(n, st.st_size);
        ingest_record_deinit(&rec);

        /* A flipped bit anywhere in the body fails the CRC. */
        for (size_t k = INGEST_RECORD_HEADER_SIZE; k < (size_t) st.st_size; k++) {
                buf[k] ^= 0x10;
                assert_int_equal(ingest_record_parse(buf, st.st_size, &rec, &n), -EBADMSG);
                buf[k] ^= 0x10;
        }
        /* Absurd lengths are garbage, not "wait for more". */
        memset(buf, 0xff, 4);
        assert_int_equal(ingest_record_parse(buf, st.st_size, &rec, &n), -EBADMSG);
        memset(buf, 0, 4);
        assert_int_equal(ingest_record_parse(buf, st.st_size, &rec, &n), -EBADMSG);

        /* A torn tail on disk reads as incomplete; the record before it still reads. */
        _cleanup_close_ int wfd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
        assert_true(wfd >= 0);
        assert_int_equal(write(wfd, "\0\0\0\x20\1\2", 6), 6);
        assert_int_equal(ingest_reader_next(&rd, fd, 0, &rec, &n), 0);
        ingest_record_deinit(&rec);
        assert_int_equal(ingest_reader_next(&rd, fd, n, &rec, &n), -EAGAIN);

        ingest_reader_deinit(&rd);
        ingest_writer_free(w);
        remove_dir(dir);
}

static void test_rotation(void **state) {
        char dir[] = "/tmp/test-ingest-XXXXXX";
        IngestWriter *w = NULL;
        IngestReader rd = INGEST_READER_NULL;
        IngestRecord rec = INGEST_RECORD_NULL;
        Segments s;
        size_t n, total = 0;
        static uint8_t payload[512 * 1024];

        assert_non_null(mkdtemp(dir));
        assert_int_equal(ingest_writer_open(dir, &w), 0);
        /* 70 x 512 KiB: more than two 16 MiB segments; each larger than one reader chunk. */
        for (unsigned i = 0; i < 70; i++) {
                payload[0] = (uint8_t) i;
                assert_int_equal(ingest_writer_append(w, "dev", "", payload, sizeof(payload), NULL, i), 0);
        }
        /* Too big for a record: refused, nothing written. */
        static uint8_t huge[FRAME_BODY_MAX + 1];
        assert_int_equal(ingest_writer_append(w, "dev", "", huge, sizeof(huge), NULL, 0), -EMSGSIZE);

        list_segments(dir, &s);
        assert_int_equal(s.n, 3);
        unsigned expect = 0;
        for (size_t i = 0; i < s.n; i++) {
                _cleanup_close_ int fd = open_segment(dir, s.names[i]);
                uint64_t off = 0;
                struct stat st;
                assert_int_equal(fstat(fd, &st), 0);
                assert_true(st.st_size <= INGEST_SEGMENT_MAX);
                ingest_reader_deinit(&rd);
                while (ingest_reader_next(&rd, fd, off, &rec, &n) == 0) {
                        assert_int_equal(rec.time_ms, expect);
                        assert_int_equal(rec.payload[0], (uint8_t) expect);
                        expect++;
                        off += n;
                        total++;
                        ingest_record_deinit(&rec);
                }
                assert_int_equal(off, st.st_size);
        }
        assert_int_equal(total, 70);

        ingest_reader_deinit(&rd);
        ingest_writer_free(w);
        remove_dir(dir);
}

static void test_rotate(void **state) {
        char dir[] = "/tmp/test-ingest-XXXXXX";
        IngestWriter *w = NULL;
        Segments s;

        assert_non_null(mkdtemp(dir));
        assert_int_equal(ingest_writer_open(dir, &w), 0);
        /* Nothing open, or an empty segment: no new file. */
        assert_int_equal(ingest_writer_rotate(w), 0);
        list_segments(dir, &s);
        assert_int_equal(s.n, 0);
        assert_int_equal(ingest_writer_append(w, "dev", "", "a", 1, NULL, 1), 0);
        assert_int_equal(ingest_writer_rotate(w), 0);
        assert_int_equal(ingest_writer_rotate(w), 0);
        list_segments(dir, &s);
        assert_int_equal(s.n, 2);
        /* Names sort in the order the segments were started. */
        assert_int_equal(ingest_writer_append(w, "dev", "", "b", 1, NULL, 2), 0);
        _cleanup_close_ int fd = open_segment(dir, s.names[1]);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        assert_true(st.st_size > 0);

        ingest_writer_free(w);
        remove_dir(dir);
}

static void test_names(void **state) {
        assert_true(ingest_segment_name_is_valid("00000000000000000001-1.log"));
        assert_true(ingest_segment_name_is_valid("01700000000000000000-4194304.log"));
        assert_false(ingest_segment_name_is_valid("0000000000000000001-1.log"));
        assert_false(ingest_segment_name_is_valid("00000000000000000001-.log"));
        assert_false(ingest_segment_name_is_valid("00000000000000000001-1.log.tmp"));
        assert_false(ingest_segment_name_is_valid("00000000000000000001_1.log"));
        assert_false(ingest_segment_name_is_valid(""));
        assert_false(ingest_segment_name_is_valid("."));
}

static void test_missing_dir(void **state) {
        IngestWriter *w = NULL;
        assert_int_equal(ingest_writer_open("/nonexistent/ingest", &w), -ENOENT);
}

static void test_room(void **state) {
        char dir[] = "/tmp/test-ingest-XXXXXX", path[64];
        const IngestRoom *ro = NULL;
        IngestRoom *rw = NULL, copy;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/" INGEST_ROOM_FILE, dir);
        assert_int_equal(ingest_room_open(path, &ro), -ENOENT);
        assert_int_equal(ingest_room_create(path, &rw), 0);
        /* Created but not written yet: not a room. */
        assert_int_equal(ingest_room_open(path, &ro), 0);
        assert_int_equal(ingest_room_read(ro, &copy), -EBADMSG);

        ingest_room_publish(rw, "00000000000000000001-1.log", 42, 1000);
        assert_int_equal(ingest_room_read(ro, &copy), 0);
        assert_string_equal(copy.segment, "00000000000000000001-1.log");
        assert_int_equal(copy.offset, 42);
        assert_int_equal(copy.allow, 1000);
        assert_int_equal(copy.seq % 2, 0);

        /* Another publish shows through the same mapping; a restart's create keeps the file. */
        ingest_room_publish(rw, "", 0, 0);
        (void) munmap(rw, sizeof(*rw));
        assert_int_equal(ingest_room_create(path, &rw), 0);
        assert_int_equal(ingest_room_read(ro, &copy), 0);
        assert_string_equal(copy.segment, "");
        assert_int_equal(copy.allow, 0);
        ingest_room_publish(rw, "00000000000000000002-1.log", 7, 5);
        assert_int_equal(ingest_room_read(ro, &copy), 0);
        assert_int_equal(copy.allow, 5);

        (void) munmap(rw, sizeof(*rw));
        ingest_room_unmap(ro);
        remove_dir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_room),
                cmocka_unit_test(test_torn_and_corrupt),
                cmocka_unit_test(test_rotation),
                cmocka_unit_test(test_rotate),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_missing_dir),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
