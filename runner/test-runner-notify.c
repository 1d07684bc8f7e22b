/* edgehub-run's NOTIFY_SOCKET: parsing, and a real sd_notify() arriving with the sender's pid */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/util/cleanup.h"
#include "runner/runner-notify.h"

static void test_parse(void **state) {
        char a[] = "READY=1\nSTATUS=Listening on /run/x.sock\nMAINPID=5\n";
        char b[] = "STATUS=starting";
        char c[] = "STOPPING=1\nREADY=0";
        NotifyMessage m;

        notify_message_parse(a, strlen(a), &m);
        assert_true(m.ready);
        assert_false(m.stopping);
        assert_string_equal(m.status, "Listening on /run/x.sock");

        notify_message_parse(b, strlen(b), &m);
        assert_false(m.ready);
        assert_string_equal(m.status, "starting");

        notify_message_parse(c, strlen(c), &m);
        assert_false(m.ready);
        assert_true(m.stopping);
        assert_null(m.status);
}

typedef struct Received {
        pid_t pid;
        bool ready;
        int count;
} Received;

static void on_message(void *userdata, pid_t pid, const NotifyMessage *m) {
        Received *r = userdata;

        r->pid = pid;
        r->ready = m->ready;
        r->count++;
}

static void test_socket(void **state) {
        _cleanup_free_ char *path = NULL;
        char dir[] = "/tmp/test-runner-notify-XXXXXX";
        NotifySocket *n = NULL;
        sd_event *e = NULL;
        Received got = {};

        assert_non_null(mkdtemp(dir));
        assert_true(asprintf(&path, "%s/notify.sock", dir) > 0);
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(notify_socket_new(&n, e, path, on_message, &got), 0);
        assert_string_equal(notify_socket_path(n), path);

        /* What a daemon does: libsystemd reads NOTIFY_SOCKET. */
        assert_int_equal(setenv("NOTIFY_SOCKET", path, 1), 0);
        assert_true(sd_notify(0, "READY=1\nSTATUS=up") > 0);
        while (got.count == 0)
                assert_true(sd_event_run(e, 1000000) > 0);
        assert_int_equal(got.pid, getpid());
        assert_true(got.ready);

        n = notify_socket_free(n);
        assert_int_equal(access(path, F_OK), -1);
        e = sd_event_unref(e);
        assert_int_equal(rmdir(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_socket),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
