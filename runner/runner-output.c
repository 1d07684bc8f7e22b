/* A child's stdout and stderr, forwarded line by line with its name in front */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "proto/util/cleanup.h"
#include "runner/runner-output.h"

#define LINE_MAX_BYTES 4096u

struct OutputForwarder {
        sd_event_source *source;
        int fd;
        int out_fd;
        char *prefix;   /* "name: " */
        size_t prefix_len;
        size_t len;     /* bytes of an incomplete line in line[prefix_len..] */
        char *line;     /* prefix + up to LINE_MAX_BYTES + '\n' */
};

static void write_line(OutputForwarder *o) {
        const char *p = o->line;
        size_t n = o->prefix_len + o->len;

        o->line[n++] = '\n';
        while (n > 0) {
                ssize_t w = write(o->out_fd, p, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        break; /* our own stderr is gone: nothing sensible left to do with the line */
                p += w;
                n -= (size_t) w;
        }
        o->len = 0;
}

void output_forwarder_feed(OutputForwarder *o, const char *data, size_t len) {
        char *body = o->line + o->prefix_len;

        while (len > 0) {
                const char *nl = memchr(data, '\n', len);
                size_t take = nl ? (size_t) (nl - data) : len;

                if (take > LINE_MAX_BYTES - o->len)
                        take = LINE_MAX_BYTES - o->len;
                memcpy(body + o->len, data, take);
                o->len += take;
                data += take;
                len -= take;

                if (len > 0 && *data == '\n') {
                        data++;
                        len--;
                        write_line(o);
                } else if (o->len == LINE_MAX_BYTES)
                        write_line(o);
        }
}

void output_forwarder_flush(OutputForwarder *o) {
        if (o->len > 0)
                write_line(o);
}

/* Reads until the pipe is empty; 1 at EOF (every writer gone) or on an error. */
static int forwarder_read(OutputForwarder *o) {
        char buf[4096];

        if (o->fd < 0)
                return 1;
        for (;;) {
                ssize_t n = read(o->fd, buf, sizeof(buf));
                if (n > 0) {
                        output_forwarder_feed(o, buf, (size_t) n);
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return 0;
                output_forwarder_flush(o);
                o->source = sd_event_source_disable_unref(o->source);
                o->fd = safe_close(o->fd);
                return 1;
        }
}

void output_forwarder_drain(OutputForwarder *o) {
        (void) forwarder_read(o);
        output_forwarder_flush(o);
}

static int on_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        (void) forwarder_read(userdata);
        return 0;
}

int output_forwarder_new(OutputForwarder **ret, sd_event *e, int fd, const char *prefix, int out_fd) {
        _cleanup_close_ int owned = fd;
        _cleanup_(output_forwarder_freep) OutputForwarder *o = NULL;
        int r;

        o = calloc(1, sizeof(*o));
        if (!o)
                return -ENOMEM;
        o->fd = -1;
        o->out_fd = out_fd;
        if (asprintf(&o->prefix, "%s: ", prefix) < 0) {
                o->prefix = NULL;
                return -ENOMEM;
        }
        o->prefix_len = strlen(o->prefix);
        o->line = malloc(o->prefix_len + LINE_MAX_BYTES + 1);
        if (!o->line)
                return -ENOMEM;
        memcpy(o->line, o->prefix, o->prefix_len);
        o->fd = TAKE_FD(owned);

        if (e) {
                r = sd_event_add_io(e, &o->source, o->fd, EPOLLIN, on_readable, o);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(o->source, "child-output");
        }

        *ret = TAKE_PTR(o);
        return 0;
}

OutputForwarder *output_forwarder_free(OutputForwarder *o) {
        if (!o)
                return NULL;
        o->source = sd_event_source_disable_unref(o->source);
        o->fd = safe_close(o->fd);
        free(o->line);
        free(o->prefix);
        free(o);
        return NULL;
}
