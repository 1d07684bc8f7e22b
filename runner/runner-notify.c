/* NOTIFY_SOCKET for the processes edgehub-run starts: the receiving side of sd_notify(3) */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "runner/runner-notify.h"

/* systemd's NOTIFY_BUFFER_MAX: a notification is at most one page. */
#define NOTIFY_BUFFER_MAX 4096u
#define NOTIFY_FD_MAX 16u

struct NotifySocket {
        sd_event_source *source;
        int fd;
        char *path;
        NotifyHandler handler;
        void *userdata;
};

void notify_message_parse(char *buf, size_t len, NotifyMessage *ret) {
        NotifyMessage m = NOTIFY_MESSAGE_NULL;
        char *p = buf, *end = buf + len;

        buf[len] = '\0';
        while (p < end) {
                char *nl = memchr(p, '\n', (size_t) (end - p));
                if (nl)
                        *nl = '\0';
                if (strcmp(p, "READY=1") == 0)
                        m.ready = true;
                else if (strcmp(p, "STOPPING=1") == 0)
                        m.stopping = true;
                else if (strncmp(p, "STATUS=", 7) == 0)
                        m.status = p + 7;
                if (!nl)
                        break;
                p = nl + 1;
        }
        *ret = m;
}

static void close_passed_fds(struct msghdr *mh) {
        for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                int fds[NOTIFY_FD_MAX];
                memcpy(fds, CMSG_DATA(c), (n < NOTIFY_FD_MAX ? n : NOTIFY_FD_MAX) * sizeof(int));
                for (size_t i = 0; i < n && i < NOTIFY_FD_MAX; i++)
                        (void) close(fds[i]);
        }
}

static int on_datagram(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        NotifySocket *n = userdata;

        for (;;) {
                char buf[NOTIFY_BUFFER_MAX + 1];
                union {
                        struct cmsghdr align;
                        char space[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int) * NOTIFY_FD_MAX)];
                } control;
                struct iovec iov = { .iov_base = buf, .iov_len = NOTIFY_BUFFER_MAX };
                struct msghdr mh = {
                        .msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = &control,
                        .msg_controllen = sizeof(control),
                };
                const struct ucred *cred = NULL;
                NotifyMessage m;
                ssize_t len;

                len = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
                if (len < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno != EAGAIN)
                                log_warning_errno(errno, "Failed to receive a notification, ignoring: %m");
                        return 0;
                }
                /* Nobody may hand us fds to keep (FDSTORE=1 is not supported). */
                close_passed_fds(&mh);

                for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                            c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
                                cred = (const struct ucred *) CMSG_DATA(c);
                if (!cred || cred->pid <= 0) {
                        log_warning("Notification without sender credentials, ignoring");
                        continue;
                }
                if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
                        log_warning("Oversized notification from pid %d, ignoring", (int) cred->pid);
                        continue;
                }

                notify_message_parse(buf, (size_t) len, &m);
                n->handler(n->userdata, cred->pid, &m);
        }
}

int notify_socket_new(NotifySocket **ret, sd_event *e, const char *path, NotifyHandler handler, void *userdata) {
        _cleanup_(notify_socket_freep) NotifySocket *n = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int one = 1, r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->fd = -1;
        n->handler = handler;
        n->userdata = userdata;

        n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (n->fd < 0)
                return -errno;
        if (setsockopt(n->fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
                return -errno;
        (void) unlink(path);
        if (bind(n->fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        n->path = strdup(path);
        if (!n->path)
                return -ENOMEM;

        r = sd_event_add_io(e, &n->source, n->fd, EPOLLIN, on_datagram, n);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(n->source, "notify-socket");

        *ret = TAKE_PTR(n);
        return 0;
}

NotifySocket *notify_socket_free(NotifySocket *n) {
        if (!n)
                return NULL;
        n->source = sd_event_source_disable_unref(n->source);
        n->fd = safe_close(n->fd);
        if (n->path)
                (void) unlink(n->path);
        free(n->path);
        free(n);
        return NULL;
}

const char *notify_socket_path(const NotifySocket *n) {
        return n->path;
}
