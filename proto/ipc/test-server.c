/* Unit tests: the sd-event frame server against the blocking client, across a fork */
#include <errno.h>
#include <grp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <systemd/sd-event.h>

#include "proto/ipc/client.h"
#include "proto/ipc/peer.h"
#include "proto/ipc/server.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

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

/* ---- SO_PEERCRED: who may send what ---- */

#define TEST_BROKER_UID 7777u
#define TEST_READ_GID 5555u
#define TEST_ADMIN_GID 5556u
#define TEST_OTHER_UID 65534u

static unsigned test_access(void *userdata, const Frame *request) {
        static const char *const admin[] = { "deploy", NULL };

        if (request->type == WIRE_AUTH_REQUEST)
                return PEER_HUB | PEER_BROKER;
        if (request->type == WIRE_KEY_REQUEST)
                return PEER_HUB;
        return wire_control_access(request, admin);
}

static int access_handler(void *userdata, const Frame *request, FrameBuilder *reply) {
        unsigned *count = userdata;

        (*count)++;
        wire_reply_init(reply, (uint16_t) (request->type + 1), 0, NULL);
        return 0;
}

/* 0: allowed; 1: refused with "permission denied: ..." in the request's reply type; else a failure. */
static int call(FrameClient *c, uint16_t type, const char *command) {
        FrameBuilder b = FRAME_BUILDER_NULL;
        Frame reply;
        char *error = NULL;
        int r;

        frame_builder_init(&b, type);
        if (command)
                frame_builder_add_string(&b, WIRE_COMMAND, command);
        r = frame_client_call(c, &b, 2000000, &reply);
        frame_builder_deinit(&b);
        if (r < 0 || reply.type != type + 1)
                return 2;
        r = wire_reply_status(&reply);
        if (r == 0)
                return 0;
        if (r != -EACCES || frame_get_string(&reply, WIRE_ERROR, &error) < 0)
                return 3;
        r = strncmp(error, "permission denied: ", 19) == 0 ? 1 : 4;
        free(error);
        return r;
}

/* In a child: become uid with the one supplementary group gid, then expect[i] for each request. */
static int peer_main(const char *path, uid_t uid, gid_t gid) {
        FrameClient c;

        if (setgroups(1, &gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
                return 20;
        if (frame_client_init(&c, path) < 0)
                return 21;
        int status = call(&c, WIRE_CONTROL_REQUEST, "status"), deploy = call(&c, WIRE_CONTROL_REQUEST, "deploy"),
            auth = call(&c, WIRE_AUTH_REQUEST, NULL), key = call(&c, WIRE_KEY_REQUEST, NULL),
            again = call(&c, WIRE_CONTROL_REQUEST, "status");
        frame_client_deinit(&c);
        /* One bit per refusal; a failure (2..4) shows as itself. */
        int results[] = { status, deploy, auth, key, again }, bits = 0;
        for (size_t i = 0; i < ELEMENTSOF(results); i++) {
                if (results[i] > 1)
                        return 30 + results[i];
                bits |= results[i] << i;
        }
        return bits;
}

static int on_peer_child(sd_event_source *s, const siginfo_t *si, void *userdata) {
        int *status = userdata;
        *status = si->si_code == CLD_EXITED ? si->si_status : 100;
        return 0;
}

static int run_peer(sd_event *e, const char *path, uid_t uid, gid_t gid) {
        int status = -1;
        sd_event_source *child = NULL;

        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(peer_main(path, uid, gid));
        assert_int_equal(sd_event_add_child(e, &child, pid, WEXITED, on_peer_child, &status), 0);
        while (status < 0)
                assert_true(sd_event_run(e, UINT64_MAX) >= 0);
        sd_event_source_unref(child);
        return status;
}

static void test_peer_access(void **state) {
        char dir[] = "/tmp/edgehub-test-peer-XXXXXX";
        char path[256];
        sd_event *e = NULL;
        FrameServer *server = NULL;
        unsigned count = 0;
        sigset_t mask;

        if (geteuid() != 0)
                skip(); /* switching to other uids needs root, as CI and run-tests are */

        log_set_max_level(LOG_CRIT);
        assert_non_null(mkdtemp(dir));
        assert_int_equal(chmod(dir, 0755), 0);
        snprintf(path, sizeof(path), "%s/test.sock", dir);
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        assert_int_equal(sigprocmask(SIG_BLOCK, &mask, NULL), 0);
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(frame_server_new(&server, e, path, 0666, access_handler, &count), 0);
        AccessPolicy policy = { .hub_uid = 4242, .broker_uid = TEST_BROKER_UID, .read_gid = TEST_READ_GID,
                                .admin_gid = TEST_ADMIN_GID };
        frame_server_set_access(server, &policy, test_access);

        /* Bits: 1 status, 2 deploy, 4 auth, 8 key, 16 status again refused. */
        assert_int_equal(run_peer(e, path, 0, 0), 0);                                  /* root: everything */
        assert_int_equal(run_peer(e, path, 4242, 4242), 0);                            /* the hub's uid */
        assert_int_equal(run_peer(e, path, TEST_OTHER_UID, TEST_READ_GID), 2 | 4 | 8); /* reader */
        assert_int_equal(run_peer(e, path, TEST_OTHER_UID, TEST_ADMIN_GID), 4 | 8);    /* administrator */
        assert_int_equal(run_peer(e, path, TEST_BROKER_UID, TEST_BROKER_UID), 1 | 2 | 8 | 16); /* broker: auth */
        assert_int_equal(run_peer(e, path, TEST_OTHER_UID, TEST_OTHER_UID), 31);       /* anyone else: nothing */
        /* The handler saw only what was let through: 5 + 5 + 2 + 3 + 1. */
        assert_int_equal(count, 16);

        frame_server_free(server);
        sd_event_unref(e);
        rmdir(dir);
}

static void test_peer_rights(void **state) {
        AccessPolicy policy = { .hub_uid = 100, .broker_uid = 200, .read_gid = 300, .admin_gid = 400 };
        PeerCred p = { .uid = 0, .gid = 0 };

        assert_int_equal(peer_rights(&policy, &p), PEER_HUB | PEER_ADMIN | PEER_READ);
        p.uid = 100;
        assert_int_equal(peer_rights(&policy, &p), PEER_HUB | PEER_ADMIN | PEER_READ);
        p = (PeerCred){ .uid = 200, .gid = 200 };
        assert_int_equal(peer_rights(&policy, &p), PEER_BROKER);
        p = (PeerCred){ .uid = 500, .gid = 300 };
        assert_int_equal(peer_rights(&policy, &p), PEER_READ);
        p = (PeerCred){ .uid = 500, .gid = 500, .groups = { 1, 400 }, .n_groups = 2 };
        assert_int_equal(peer_rights(&policy, &p), PEER_ADMIN | PEER_READ);
        p = (PeerCred){ .uid = 500, .gid = 500, .groups = { 1, 2 }, .n_groups = 2 };
        assert_int_equal(peer_rights(&policy, &p), 0);
        /* A peer the kernel could not name gets nothing, even with a hub uid of -1. */
        AccessPolicy none = ACCESS_POLICY_NONE;
        p = (PeerCred){ .uid = (uid_t) -1, .gid = (gid_t) -1 };
        assert_int_equal(peer_rights(&none, &p), 0);
        /* No group configured: -1 never matches a peer's gid. */
        p = (PeerCred){ .uid = 500, .gid = (gid_t) -1 };
        assert_int_equal(peer_rights(&none, &p), 0);
}

/* ---- the control table: one dispatch for every daemon ---- */

static json_t *run_echo(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        if (!argument) {
                *ret_error = "echo needs an argument";
                return NULL;
        }
        return json_pack("{s:s}", "echo", argument);
}

static json_t *run_lookup(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        *ret_error = "no such thing";
        return NULL;
}

static json_t *run_nomem(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        return NULL;
}

/* The reply to a control request of command (NULL: none) and argument: its status, error or JSON in *ret_text. */
static int serve(const char *command, const char *argument, char **ret_text) {
        static const WireControlCommand table[] = {
                { "echo", run_echo, EINVAL },
                { "lookup", run_lookup },
                { "nomem", run_nomem },
        };
        FrameBuilder req = FRAME_BUILDER_NULL, reply = FRAME_BUILDER_NULL;
        Frame f, r;
        int status;

        frame_builder_init(&req, WIRE_CONTROL_REQUEST);
        if (command)
                frame_builder_add_string(&req, WIRE_COMMAND, command);
        if (argument)
                frame_builder_add_string(&req, WIRE_ARGUMENT, argument);
        assert_int_equal(frame_builder_finish(&req), 0);
        assert_int_equal(frame_parse(&f, req.buf + FRAME_HEADER_SIZE, req.len - FRAME_HEADER_SIZE), 0);
        assert_int_equal(wire_control_serve(table, ELEMENTSOF(table), NULL, &f, &reply), 0);
        assert_int_equal(frame_builder_finish(&reply), 0);
        assert_int_equal(frame_parse(&r, reply.buf + FRAME_HEADER_SIZE, reply.len - FRAME_HEADER_SIZE), 0);
        assert_int_equal(r.type, WIRE_CONTROL_REPLY);
        status = wire_reply_status(&r);
        *ret_text = NULL;
        (void) frame_get_string(&r, status == 0 ? WIRE_JSON : WIRE_ERROR, ret_text);
        frame_builder_deinit(&req);
        frame_builder_deinit(&reply);
        return status;
}

static void test_control_serve(void **state) {
        char *text;

        assert_int_equal(serve("echo", "hi", &text), 0);
        assert_string_equal(text, "{\"echo\":\"hi\"}");
        free(text);
        /* A command's own refusal carries its row's status; ENOENT by default. */
        assert_int_equal(serve("echo", NULL, &text), -EINVAL);
        assert_string_equal(text, "echo needs an argument");
        free(text);
        assert_int_equal(serve("lookup", NULL, &text), -ENOENT);
        assert_string_equal(text, "no such thing");
        free(text);
        assert_int_equal(serve("nomem", NULL, &text), -ENOMEM);
        free(text);
        /* An unknown command names the table's, in its order. */
        assert_int_equal(serve("nope", NULL, &text), -EINVAL);
        assert_string_equal(text, "unknown command; known: echo, lookup, nomem");
        free(text);
        assert_int_equal(serve(NULL, NULL, &text), -EINVAL);
        assert_string_equal(text, "command is required");
        free(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_serve),
                cmocka_unit_test(test_control_serve),
                cmocka_unit_test(test_peer_rights),
                cmocka_unit_test(test_peer_access),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
