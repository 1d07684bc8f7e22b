/* Unit tests: the sd-event frame server against the blocking client, across a fork */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <systemd/sd-event.h>

#include "proto/client.h"
#include "proto/cleanup.h"
#include "proto/log.h"
#include "proto/server.h"
#include "proto/wire.h"

static int echo_handler(void *userdata, const Frame *request, FrameBuilder *reply) {
        unsigned *count = userdata;
        char *command = NULL;

        (*count)++;
        if (request->type != WIRE_CONTROL_REQUEST || frame_get_string(request, WIRE_COMMAND, &command) < 0) {
                wire_reply_init(reply, WIRE_CONTROL_REPLY, EINVAL, "bad request");
                return 0;
        }
        wire_reply_init(reply, WIRE_CONTROL_REPLY, 0, NULL);
        frame_builder_add_string(reply, WIRE_JSON, command);
        free(command);
        return 0;
}

/* The child: a good call, garbage on a raw connection, then a good call again. */
static int client_main(const char *path) {
        FrameClient c;
        FrameBuilder b = FRAME_BUILDER_NULL;
        Frame reply;
        char *json = NULL;

        if (frame_client_init(&c, path) < 0)
                return 10;
        frame_builder_init(&b, WIRE_CONTROL_REQUEST);
        frame_builder_add_string(&b, WIRE_COMMAND, "status");
        if (frame_client_call(&c, &b, 2000000, &reply) < 0 || wire_reply_status(&reply) != 0)
                return 11;
        if (frame_get_string(&reply, WIRE_JSON, &json) < 0 || strcmp(json, "status") != 0)
                return 12;
        free(json);

        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return 13;
        /* A header announcing 2 GiB: the server must hang up, not allocate. */
        if (write(fd, "\x7f\xff\xff\xff garbage", 12) != 12)
                return 14;
        char buf[16];
        if (read(fd, buf, sizeof(buf)) != 0)
                return 15;
        close(fd);

        frame_builder_init(&b, WIRE_AUTH_REQUEST);
        if (frame_client_call(&c, &b, 2000000, &reply) < 0 || wire_reply_status(&reply) != -EINVAL)
                return 16;
        frame_builder_deinit(&b);
        frame_client_deinit(&c);
        return 0;
}

static int on_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        int *status = userdata;
        *status = si->si_code == CLD_EXITED ? si->si_status : 100;
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

static void test_serve(void **state) {
        char dir[] = "/tmp/edgehub-test-server-XXXXXX";
        char path[256];
        sd_event *e = NULL;
        FrameServer *server = NULL;
        unsigned count = 0;
        int status = -1;
        sigset_t mask;

        log_set_max_level(LOG_CRIT);
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/test.sock", dir);
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        assert_int_equal(sigprocmask(SIG_BLOCK, &mask, NULL), 0);

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(frame_server_new(&server, e, path, 0600, echo_handler, &count), 0);

        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(client_main(path));

        sd_event_source *child = NULL;
        assert_int_equal(sd_event_add_child(e, &child, pid, WEXITED, on_child, &status), 0);
        assert_true(sd_event_loop(e) >= 0);
        assert_int_equal(status, 0);
        assert_int_equal(count, 2);

        sd_event_source_unref(child);
        frame_server_free(server);
        sd_event_unref(e);
        assert_int_equal(access(path, F_OK), -1);
        rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_serve),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
