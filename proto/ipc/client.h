/* Synchronous request/reply over a Unix socket, with a deadline */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "proto/ipc/frame.h"

/*
 * For callers that may block briefly and must bound it: the broker plugin
 * (on the broker's only thread) and hubctl. The connection is made lazily
 * and dropped after any error, so the next call reconnects.
 */
typedef struct FrameClient {
        char *path;
        int fd;
        uint8_t *reply;     /* body of the last reply; ret_frame points into it */
        unsigned connects;  /* how many connections this client has made; a change means the daemon may have restarted */
} FrameClient;

#define FRAME_CLIENT_NULL ((FrameClient){ .fd = -1 })

int frame_client_init(FrameClient *c, const char *path);
void frame_client_deinit(FrameClient *c);

/*
 * Sends the finished request and waits for one reply until timeout_usec
 * passes. On success *ret_frame is the parsed reply, valid until the next
 * call. -ENOENT/-ECONNREFUSED daemon not running, -ETIMEDOUT, -EBADMSG.
 */
int frame_client_call(FrameClient *c, FrameBuilder *request, uint64_t timeout_usec, Frame *ret_frame);

/*
 * Between calls: true if the daemon closed our idle connection (it exited or
 * restarted); the connection is dropped, the next call makes a new one.
 */
bool frame_client_peer_gone(FrameClient *c);

/* The reply's WIRE_STATUS as 0 or -errno; -EBADMSG if missing. */
int wire_reply_status(const Frame *reply);
