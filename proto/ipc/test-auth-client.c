/* Unit tests: the auth-cache client against a stand-in auth-cache served across a fork */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <systemd/sd-event.h>

#include "proto/ipc/auth-client.h"
#include "proto/ipc/server.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/runtime/test-daemon.h"
#include "proto/util/cleanup.h"

#define TIMEOUT_USEC 2000000

/* The stand-in: canned verdicts by the identity (or client id) asked about. */
static int handler(void *userdata, const Frame *request, FrameBuilder *reply) {
        _cleanup_free_ char *identity = NULL, *password = NULL;

        switch (request->type) {
        case WIRE_AUTH_REQUEST:
                if (frame_get_string(request, WIRE_CLIENT_ID, &identity) < 0)
                        return -EBADMSG;
                if (frame_get(request, WIRE_CERTIFICATE) && !frame_get(request, WIRE_PASSWORD)) {
                        wire_reply_init(reply, WIRE_AUTH_REPLY, 0, NULL);
                        frame_builder_add_string(reply, WIRE_IDENTITY, "x509-device");
                } else if (frame_get_string(request, WIRE_PASSWORD, &password) == 0 &&
                           strcmp(password, "good") == 0) {
                        wire_reply_init(reply, WIRE_AUTH_REPLY, 0, NULL);
                        frame_builder_add_string(reply, WIRE_IDENTITY, identity);
                } else
                        wire_reply_init(reply, WIRE_AUTH_REPLY, EACCES, "bad signature");
                return 0;
        case WIRE_KEY_REQUEST:
        case WIRE_IDENTITY_REQUEST:
                if (frame_get_string(request, WIRE_IDENTITY, &identity) < 0)
                        return -EBADMSG;
                if (strcmp(identity, "wrong-type") == 0) {
                        wire_reply_init(reply, WIRE_CONTROL_REPLY, 0, NULL);
                        return 0;
                }
                if (strcmp(identity, "gone") == 0) {
                        wire_reply_init(reply, request->type + 1, ENOENT, "not in the device scope");
                        return 0;
                }
                if (strcmp(identity, "off") == 0) {
                        wire_reply_init(reply, request->type + 1, EACCES, "disabled");
                        return 0;
                }
                wire_reply_init(reply, request->type + 1, 0, NULL);
                if (request->type == WIRE_IDENTITY_REQUEST || strcmp(identity, "empty") == 0)
                        return 0;
                if (strcmp(identity, "child") == 0)
                        frame_builder_add_string(reply, WIRE_IDENTITY, "edge/$edgeHub");
                else
                        frame_builder_add_string(reply, WIRE_KEY, "a2V5");
                return 0;
        default:
                return -EBADMSG;
        }
}

typedef struct Fixture {
        char dir[64];
        char path[128];
        pid_t pid;
        FrameClient client;
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(Fixture));
        log_set_max_level(LOG_CRIT);
        assert_non_null(f);
        strcpy(f->dir, "/tmp/edgehub-test-auth-client-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/auth-cache.sock", f->dir);
        f->pid = test_serve_fork(f->path, handler);
        assert_int_equal(frame_client_init(&f->client, f->path), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        frame_client_deinit(&f->client);
        kill(f->pid, SIGKILL);
        waitpid(f->pid, NULL, 0);
        unlink(f->path);
        rmdir(f->dir);
        free(f);
        return 0;
}

static void test_check(void **state) {
        Fixture *f = *state;
        char *identity = NULL, *reason = NULL;
        int status = 1;

        AuthCredentials good = { .client_id = "dev", .username = "hub/dev", .password = "good" };
        assert_int_equal(auth_client_check(&f->client, TIMEOUT_USEC, &good, &status, &identity, &reason), 0);
        assert_int_equal(status, 0);
        assert_string_equal(identity, "dev");
        assert_null(reason);
        free(identity);

        AuthCredentials bad = { .client_id = "dev", .username = "hub/dev", .password = "forged" };
        assert_int_equal(auth_client_check(&f->client, TIMEOUT_USEC, &bad, &status, &identity, &reason), 0);
        assert_int_equal(status, -EACCES);
        assert_null(identity);
        assert_string_equal(reason, "bad signature");
        free(reason);

        /* No password, a certificate: the request carries the certificate and no password field. */
        AuthCredentials x509 = { .client_id = "x", .username = "hub/x", .certificate = "\x30\x03", .certificate_len = 2 };
        assert_int_equal(auth_client_check(&f->client, TIMEOUT_USEC, &x509, &status, &identity, NULL), 0);
        assert_int_equal(status, 0);
        assert_string_equal(identity, "x509-device");
        free(identity);
}

static void test_key(void **state) {
        Fixture *f = *state;
        char *key = NULL, *signer = NULL;
        int status = 1;

        assert_int_equal(auth_client_key(&f->client, TIMEOUT_USEC, "dev", &status, &key, &signer), 0);
        assert_int_equal(status, 0);
        assert_string_equal(key, "a2V5");
        assert_null(signer);
        auth_key_freep(&key);
        assert_null(key);

        /* The client keeps the last reply's body: the key must not stay there. */
        assert_null(memmem(f->client.reply, malloc_usable_size(f->client.reply), "a2V5", 4));

        assert_int_equal(auth_client_key(&f->client, TIMEOUT_USEC, "child", &status, &key, &signer), 0);
        assert_int_equal(status, 0);
        assert_null(key);
        assert_string_equal(signer, "edge/$edgeHub");
        free(signer);
        /* A caller that cannot sign on another's behalf: a signer reply is malformed to it. */
        assert_int_equal(auth_client_key(&f->client, TIMEOUT_USEC, "child", &status, &key, NULL), -EBADMSG);

        assert_int_equal(auth_client_key(&f->client, TIMEOUT_USEC, "gone", &status, &key, &signer), 0);
        assert_int_equal(status, -ENOENT);
        assert_int_equal(auth_client_key(&f->client, TIMEOUT_USEC, "off", &status, &key, &signer), 0);
        assert_int_equal(status, -EACCES);
        assert_int_equal(auth_client_key(&f->client, TIMEOUT_USEC, "empty", &status, &key, &signer), -EBADMSG);
        assert_int_equal(auth_client_key(&f->client, TIMEOUT_USEC, "wrong-type", &status, &key, &signer), -EBADMSG);
}

static void test_identity(void **state) {
        Fixture *f = *state;
        int status = 1;

        assert_int_equal(auth_client_identity(&f->client, TIMEOUT_USEC, "dev", &status), 0);
        assert_int_equal(status, 0);
        assert_int_equal(auth_client_identity(&f->client, TIMEOUT_USEC, "gone", &status), 0);
        assert_int_equal(status, -ENOENT);
        assert_int_equal(auth_client_identity(&f->client, TIMEOUT_USEC, "off", &status), 0);
        assert_int_equal(status, -EACCES);
        assert_int_equal(auth_client_identity(&f->client, TIMEOUT_USEC, "wrong-type", &status), -EBADMSG);
}

/* No auth-cache running: "refused", never the transport's ENOENT that would read as "no such identity". */
static void test_not_running(void **state) {
        FrameClient c;
        int status = 1;

        assert_int_equal(frame_client_init(&c, "/nonexistent/edgehub/auth-cache.sock"), 0);
        assert_int_equal(auth_client_identity(&c, TIMEOUT_USEC, "dev", &status), -ECONNREFUSED);
        assert_int_equal(status, 1);
        frame_client_deinit(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_check, setup, teardown),
                cmocka_unit_test_setup_teardown(test_key, setup, teardown),
                cmocka_unit_test_setup_teardown(test_identity, setup, teardown),
                cmocka_unit_test(test_not_running),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
