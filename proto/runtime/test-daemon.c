/* Shared fixtures of the daemons' unit tests: a scratch folder, a test configuration, blocked signals, one request */
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cmocka.h>
#include <systemd/sd-event.h>

#include "proto/ipc/client.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/test-daemon.h"
#include "proto/util/cleanup.h"

char *test_scratch_new(const char *name) {
        char *dir = NULL;

        assert_true(asprintf(&dir, "/tmp/test-%s-XXXXXX", name) > 0);
        assert_non_null(mkdtemp(dir));
        return dir;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

void test_scratch_remove(char *dir) {
        if (!dir)
                return;
        (void) nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(dir);
}

int test_scratch_setup(void **state) {
        *state = test_scratch_new("edgehub");
        return 0;
}

int test_scratch_teardown(void **state) {
        test_scratch_remove(*state);
        return 0;
}

Kv *test_kv_open(const char *dir) {
        _cleanup_free_ char *path = NULL, *error = NULL;
        KvOptions o = { .sync_every_write = true };
        Kv *kv = NULL;

        assert_true(asprintf(&path, "%s/store", dir) > 0);
        assert_int_equal(kv_open(path, &o, &kv, &error), 0);
        return kv;
}

Config *test_config_new(const char *dir) {
        _cleanup_free_ char *yaml = NULL, *error = NULL, *warnings = NULL;
        Config *config = NULL;
        FILE *in;

        assert_true(asprintf(&yaml,
                             "edge:\n"
                             "  device_id: edge1\n"
                             "  hub_hostname: hub.example\n"
                             "  edgehub_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
                             "listeners:\n"
                             "  tls:\n"
                             "    port: 0\n"
                             "storage:\n"
                             "  dir: %s/state\n"
                             "runtime_dir: %s/run\n",
                             dir, dir) > 0);
        in = fmemopen(yaml, strlen(yaml), "r");
        assert_non_null(in);
        assert_int_equal(config_parse(in, "test.yaml", &config, &error, &warnings), 0);
        fclose(in);
        return config;
}

void test_block_daemon_signals(void) {
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        assert_int_equal(sigprocmask(SIG_BLOCK, &mask, NULL), 0);
}

pid_t test_serve_fork(const char *path, FrameHandler handler) {
        int pipefd[2];
        char byte;
        pid_t pid;

        assert_int_equal(pipe(pipefd), 0);
        pid_t parent = getpid();
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                sd_event *e = NULL;
                FrameServer *s = NULL;

                /* SIGTERM is blocked here: a test that crashes must not leave meson waiting for its timeout. */
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(13);
                close(pipefd[0]);
                if (sd_event_new(&e) < 0 || frame_server_new(&s, e, path, 0600, handler, NULL) < 0)
                        _exit(10);
                if (write(pipefd[1], "x", 1) != 1)
                        _exit(11);
                close(pipefd[1]);
                _exit(sd_event_loop(e) < 0 ? 12 : 0);
        }
        close(pipefd[1]);
        assert_int_equal(read(pipefd[0], &byte, 1), 1);
        close(pipefd[0]);
        return pid;
}

void test_handle(FrameHandler handler, void *userdata, FrameBuilder *request, FrameBuilder *out, Frame *reply) {
        Frame req;

        assert_int_equal(frame_builder_finish(request), 0);
        assert_int_equal(frame_parse(&req, request->buf + FRAME_HEADER_SIZE, request->len - FRAME_HEADER_SIZE), 0);
        assert_int_equal(handler(userdata, &req, out), 0);
        assert_int_equal(frame_builder_finish(out), 0);
        assert_int_equal(frame_parse(reply, out->buf + FRAME_HEADER_SIZE, out->len - FRAME_HEADER_SIZE), 0);
}

int test_control_command(FrameHandler handler, void *userdata, const char *command, const char *argument, char **ret_text) {
        FrameBuilder req = FRAME_BUILDER_NULL, out = FRAME_BUILDER_NULL;
        Frame reply;
        int status;

        frame_builder_init(&req, WIRE_CONTROL_REQUEST);
        frame_builder_add_string(&req, WIRE_COMMAND, command);
        if (argument)
                frame_builder_add_string(&req, WIRE_ARGUMENT, argument);
        test_handle(handler, userdata, &req, &out, &reply);
        assert_int_equal(reply.type, WIRE_CONTROL_REPLY);
        status = wire_reply_status(&reply);
        *ret_text = NULL;
        assert_int_equal(frame_get_string(&reply, status == 0 ? WIRE_JSON : WIRE_ERROR, ret_text), 0);
        frame_builder_deinit(&req);
        frame_builder_deinit(&out);
        return status;
}
