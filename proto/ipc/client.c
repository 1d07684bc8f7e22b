/* Synchronous request/reply over a Unix socket, with a deadline */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "proto/ipc/client.h"
#include "proto/ipc/wire.h"
#include "proto/util/cleanup.h"

int frame_client_init(FrameClient *c, const char *path) {
        *c = FRAME_CLIENT_NULL;
        c->path = strdup(path);
        return c->path ? 0 : -ENOMEM;
}

static void client_disconnect(FrameClient *c) {
        c->fd = safe_close(c->fd);
}

bool frame_client_peer_gone(FrameClient *c) {
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

        if (c->fd < 0)
                return false;
        /* Between calls nothing is owed to us: a readable socket is EOF (the daemon exited) or junk. */
        if (poll(&pfd, 1, 0) <= 0)
                return false;
        client_disconnect(c);
        return true;
}

void frame_client_deinit(FrameClient *c) {
        client_disconnect(c);
        free(c->reply);
        free(c->path);
        *c = FRAME_CLIENT_NULL;
}

/*
 * A local Unix socket connect either succeeds or fails at once (no SYN
 * round-trip), except when the listen backlog is full: then EAGAIN, which we
 * report like a refusal so the caller's deadline is never at risk.
 */
static int client_connect(FrameClient *c) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (strlen(c->path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, c->path);

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return errno == EAGAIN ? -ECONNREFUSED : -errno;
        c->fd = TAKE_FD(fd);
        c->connects++;
        return 0;
}

int frame_client_call(FrameClient *c, FrameBuilder *request, uint64_t timeout_usec, Frame *ret_frame) {
        uint64_t deadline = now_usec() + timeout_usec;
        uint8_t *body = NULL;
        size_t len = 0;
        Frame f;
        int r;

        r = frame_builder_finish(request);
        if (r < 0)
                return r;

        /* A kept connection may have been closed by a restarted daemon: retry once on a fresh one. */
        for (int attempt = 0; attempt < 2; attempt++) {
                bool fresh = c->fd < 0;
                if (fresh) {
                        r = client_connect(c);
                        if (r < 0)
                                return r;
                }
                r = frame_send(c->fd, request->buf, request->len, deadline);
                if (r >= 0)
                        r = frame_recv(c->fd, &body, &len, deadline);
                if (r >= 0)
                        break;
                client_disconnect(c);
                if (fresh || (r != -ECONNRESET && r != -EPIPE))
                        return r;
        }

        r = frame_parse(&f, body, len);
        if (r < 0) {
                free(body);
                client_disconnect(c);
                return r;
        }
        free(c->reply);
        c->reply = body;
        *ret_frame = f;
        return 0;
}

int wire_reply_status(const Frame *reply) {
        uint32_t status;
        int r = frame_get_u32(reply, WIRE_STATUS, &status);

        if (r < 0)
                return -EBADMSG;
        if (status > 4095)
                return -EBADMSG;
        return -(int) status;
}
