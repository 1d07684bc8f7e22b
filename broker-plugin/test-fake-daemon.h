/* A scripted stand-in for auth-cache or hub-store (unit tests only) */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "broker-plugin/ingest-append.h"
#include "proto/ipc/frame.h"
#include "proto/store/ingest-log.h"

/*
 * A child process that answers one request per step, in order, and reports
 * every request it received to the parent over a socketpair. reply_type 0
 * closes the connection without replying.
 */
typedef struct FakeStep {
        uint16_t reply_type;
        uint32_t status;        /* positive errno or 0 */
        unsigned delay_msec;    /* before replying */
        const char *identity;   /* WIRE_IDENTITY in the reply, if set */
} FakeStep;

typedef struct FakeDaemon {
        pid_t pid;
        int report_fd;
        char path[108];
        uint8_t *last;          /* body of the last request read with fake_daemon_next() */
} FakeDaemon;

/* Listens on path (which must not exist) and serves steps[0..n). */
int fake_daemon_start(FakeDaemon *d, const char *path, const FakeStep *steps, size_t n);
/* The next request the daemon received, within a second; -ETIMEDOUT if none. */
int fake_daemon_next(FakeDaemon *d, Frame *ret);
void fake_daemon_stop(FakeDaemon *d);

/* A fresh directory for sockets, e.g. "/tmp/edgehub-test-XXXXXX". */
int fake_runtime_dir(char dir[static 64]);
/* Removes dir and everything under it. */
void fake_dir_remove(const char *dir);

/* Creates dir/ingest and opens the plugin's ingest log there (runtime_dir dir as well). */
int fake_ingest_open(IngestAppend *a, const char *dir, bool reject_when_full);
/* The records in dir/ingest, in order (one writer: one segment); 0 if none. */
size_t fake_ingest_read(const char *dir, IngestRecord *recs, size_t max);
