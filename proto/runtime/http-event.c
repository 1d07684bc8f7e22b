/* A libmicrohttpd daemon driven by an sd-event loop (no thread of its own) */
#include <errno.h>
#include <stdlib.h>

#include "proto/runtime/http-event.h"
#include "proto/runtime/log.h"

struct HttpEvent {
        struct MHD_Daemon *daemon;
        sd_event_source *io_source;
        sd_event_source *timer_source;
};

static void http_event_arm_timer(HttpEvent *h) {
        MHD_UNSIGNED_LONG_LONG timeout_ms;

        if (MHD_get_timeout(h->daemon, &timeout_ms) != MHD_YES) {
                (void) sd_event_source_set_enabled(h->timer_source, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time_relative(h->timer_source, (uint64_t) timeout_ms * 1000u);
        (void) sd_event_source_set_enabled(h->timer_source, SD_EVENT_ONESHOT);
}

void http_event_run(HttpEvent *h) {
        if (MHD_run(h->daemon) != MHD_YES)
                log_debug("MHD_run() failed, ignoring");
        http_event_arm_timer(h);
}

void http_event_kick(HttpEvent *h) {
        if (!h)
                return;
        (void) sd_event_source_set_time_relative(h->timer_source, 0);
        (void) sd_event_source_set_enabled(h->timer_source, SD_EVENT_ONESHOT);
}

static int http_event_on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        http_event_run(userdata);
        return 0;
}

static int http_event_on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        http_event_run(userdata);
        return 0;
}

int http_event_attach(HttpEvent **ret, sd_event *e, struct MHD_Daemon *d, const char *description) {
        const union MHD_DaemonInfo *info;
        HttpEvent *h;
        int r;

        info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info)
                return -EIO;
        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->daemon = d;
        r = sd_event_add_io(e, &h->io_source, info->epoll_fd, EPOLLIN, http_event_on_io, h);
        if (r >= 0)
                r = sd_event_add_time_relative(e, &h->timer_source, CLOCK_MONOTONIC, 0, 0, http_event_on_timer, h);
        if (r < 0) {
                http_event_free(h);
                return r;
        }
        (void) sd_event_source_set_description(h->io_source, description);
        (void) sd_event_source_set_description(h->timer_source, description);
        http_event_arm_timer(h);
        *ret = h;
        return 0;
}

HttpEvent *http_event_free(HttpEvent *h) {
        if (!h)
                return NULL;
        h->timer_source = sd_event_source_disable_unref(h->timer_source);
        h->io_source = sd_event_source_disable_unref(h->io_source);
        free(h);
        return NULL;
}
