/* Unit tests: the plugin's ingest-log append and its store-full check */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "broker-plugin/ingest-append.h"
#include "proto/log.h"

static char root[] = "/tmp/test-ingest-append-XXXXXX";

static void path(char *buf, size_t n, const char *rel) {
        snprintf(buf, n, "%s/%s", root, rel);
}

static void test_append_and_full(void **state) {
        IngestAppend a = INGEST_APPEND_NULL;
        char ingest[256], full[256], cmd[512];

        log_set_max_level(LOG_ERR);
        assert_non_null(mkdtemp(root));
        path(ingest, sizeof(ingest), "ingest");
        path(full, sizeof(full), "store-full");

        /* The runner creates the folder; without it the plugin refuses to start. */
        assert_int_equal(ingest_append_init(&a, root, root, true, true), -ENOENT);
        assert_int_equal(mkdir(ingest, 0700), 0);
        assert_int_equal(ingest_append_init(&a, root, root, true, true), 0);

        assert_int_equal(ingest_append(&a, "dev", "a=1", "x", 1, NULL), 0);

        /* hub-store's flag refuses new messages, seen at the next check (cached up to 100 ms). */
        int fd = open(full, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        close(fd);
        usleep(INGEST_FULL_CHECK_USEC + 10000);
        assert_int_equal(ingest_append(&a, "dev", "", "y", 1, NULL), -ENOBUFS);
        assert_int_equal(unlink(full), 0);
        usleep(INGEST_FULL_CHECK_USEC + 10000);
        assert_int_equal(ingest_append(&a, "dev", "", "z", 1, NULL), 0);
        ingest_append_deinit(&a);

        /* drop_oldest ignores the flag. */
        fd = open(full, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        close(fd);
        assert_int_equal(ingest_append_init(&a, root, root, false, false), 0);
        assert_int_equal(ingest_append(&a, "dev", "", "w", 1, NULL), 0);
        ingest_append_deinit(&a);

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        assert_int_equal(system(cmd), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_append_and_full),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
