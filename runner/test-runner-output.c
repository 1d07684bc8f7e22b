/* edgehub-run's output forwarding: lines get the child's name in front, whatever the chunking */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/util/cleanup.h"
#include "runner/runner-output.h"

/* Everything written to out so far. */
static char *slurp(int out) {
        static char buf[65536];
        ssize_t n = read(out, buf, sizeof(buf) - 1);

        buf[n > 0 ? n : 0] = '\0';
        return buf;
}

static void test_lines(void **state) {
        int p[2], dummy[2];
        OutputForwarder *o = NULL;

        assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        assert_int_equal(pipe2(dummy, O_CLOEXEC), 0);
        (void) close(dummy[1]);
        assert_int_equal(output_forwarder_new(&o, NULL, dummy[0], "hub-store", p[1]), 0);

        output_forwarder_feed(o, "<6>one\n<4>tw", 12);
        assert_string_equal(slurp(p[0]), "hub-store: <6>one\n");
        output_forwarder_feed(o, "o\n\nthree", 8);
        assert_string_equal(slurp(p[0]), "hub-store: <4>two\nhub-store: \n");
        output_forwarder_flush(o);
        assert_string_equal(slurp(p[0]), "hub-store: three\n");
        output_forwarder_flush(o);
        assert_string_equal(slurp(p[0]), "");

        /* The child is gone: the pipe's EOF ends forwarding (and closes our end). */
        output_forwarder_drain(o);
        assert_string_equal(slurp(p[0]), "");

        o = output_forwarder_free(o);
        (void) close(p[0]);
        (void) close(p[1]);
}

static void test_long_line(void **state) {
        _cleanup_free_ char *big = malloc(5000);
        int p[2], dummy[2];
        OutputForwarder *o = NULL;
        char *out;

        memset(big, 'x', 5000);
        assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
        assert_int_equal(pipe2(dummy, O_CLOEXEC), 0);
        (void) close(dummy[1]);
        assert_int_equal(output_forwarder_new(&o, NULL, dummy[0], "m", p[1]), 0);

        /* Cut at 4096 bytes, the rest follows as its own line. */
        output_forwarder_feed(o, big, 5000);
        output_forwarder_feed(o, "\n", 1);
        out = slurp(p[0]);
        assert_int_equal(strlen(out), 3 + 4096 + 1 + 3 + 904 + 1);
        assert_memory_equal(out, "m: xxx", 6);
        assert_memory_equal(out + 3 + 4096, "\nm: x", 5);

        o = output_forwarder_free(o);
        (void) close(p[0]);
        (void) close(p[1]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lines),
                cmocka_unit_test(test_long_line),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
