/* Shared fixtures of the daemons' unit tests: a scratch folder, a test configuration, blocked signals, one request */
#pragma once

#include <sys/types.h>

#include "proto/ipc/frame.h"
#include "proto/ipc/server.h"
#include "proto/runtime/config.h"
#include "proto/store/kv.h"

/* A new folder /tmp/test-{name}-XXXXXX (the caller frees the path), and its removal with everything in it. */
char *test_scratch_new(const char *name);
void test_scratch_remove(char *dir);

/* cmocka fixtures for tests that need nothing but a scratch folder: *state is its path. */
int test_scratch_setup(void **state);
int test_scratch_teardown(void **state);

/* A RocksDB store at {dir}/store (created), syncing every write: for tests of a daemon's records on disk. */
Kv *test_kv_open(const char *dir);

/* A parsed configuration of edge device "edge1" on "hub.example", storage and runtime folders under dir. */
Config *test_config_new(const char *dir);

/* SIGTERM, SIGINT and SIGHUP blocked, as the daemons' main() leaves them for daemon_event_new(). */
void test_block_daemon_signals(void);

/*
 * A stand-in daemon: a child process serving handler on path until it is
 * killed (SIGKILL, then waitpid); returns once the socket listens.
 */
pid_t test_serve_fork(const char *path, FrameHandler handler);

/*
 * The reply of handler to request (finished here), as a daemon's socket
 * would carry it: *reply points into out. Asserts the handler answered.
 */
void test_handle(FrameHandler handler, void *userdata, FrameBuilder *request, FrameBuilder *out, Frame *reply);

/*
 * A control command (argument may be NULL) through handler: the reply's
 * status (wire_reply_status()), and its JSON text, or its error when the
 * status is not 0, in *ret_text. Asserts a WIRE_CONTROL_REPLY with either.
 */
int test_control_command(FrameHandler handler, void *userdata, const char *command, const char *argument, char **ret_text);
