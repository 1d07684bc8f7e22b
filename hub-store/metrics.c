/* hub-store's Prometheus endpoint: libmicrohttpd driven by the Manager's sd-event loop */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hub-store/manager.h"
#include "hub-store/metrics.h"
#include "proto/runtime/http-event.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

/*
 * MHD runs on the Manager's loop (proto/runtime/http-event.h): a scrape reads the
 * store's and the Manager's counters, which only the loop's thread may touch.
 * A scrape is O(streams), so serving it inline costs the broker's store
 * requests no more than a hubctl query.
 */

#define METRICS_CONNECTION_LIMIT 8
#define METRICS_CONNECTION_TIMEOUT_SEC 10
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct MetricsServer {
        Manager *manager;
        struct MHD_Daemon *daemon;
        HttpEvent *event;
};

static enum MHD_Result metrics_queue_text(struct MHD_Connection *connection, unsigned status, const char *text) {
        struct MHD_Response *response = MHD_create_response_from_buffer(strlen(text), (void *) text,
                                                                        MHD_RESPMEM_PERSISTENT);
        enum MHD_Result ret;

        if (!response)
                return MHD_NO;
        (void) MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
        ret = MHD_queue_response(connection, status, response);
        MHD_destroy_response(response);
        return ret;
}

static enum MHD_Result metrics_on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                          const char *method, const char *version, const char *upload_data,
                                          size_t *upload_data_size, void **con_cls) {
        MetricsServer *s = cls;
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
                return metrics_queue_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "Only GET /metrics\n");
        if (strcmp(url, "/metrics") != 0)
                return metrics_queue_text(connection, MHD_HTTP_NOT_FOUND, "Not found: try /metrics\n");

        f = open_memstream(&text, &size);
        if (!f)
                return MHD_NO;
        r = metrics_render(s->manager, f);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                log_warning_errno(r, "Failed to render the metrics, ignoring: %m");
                return metrics_queue_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR, "Failed to render the metrics\n");
        }

        struct MHD_Response *response = MHD_create_response_from_buffer(size, text, MHD_RESPMEM_MUST_FREE);
        if (!response)
                return MHD_NO;
        text = NULL; /* the response owns it */
        (void) MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, METRICS_CONTENT_TYPE);
        enum MHD_Result ret = MHD_queue_response(connection, MHD_HTTP_OK, response);
        MHD_destroy_response(response);
        return ret;
}

/* Our own listening socket: a bind error is reported with its errno, before READY=1. */
static int metrics_listen(const char *address, uint16_t port, int *ret_fd, bool *ret_ipv6) {
        union {
                struct sockaddr sa;
                struct sockaddr_in in;
                struct sockaddr_in6 in6;
        } sa = {};
        socklen_t len;
        bool ipv6 = false;
        int one = 1;

        if (inet_pton(AF_INET, address, &sa.in.sin_addr) == 1) {
                sa.in.sin_family = AF_INET;
                sa.in.sin_port = htons(port);
                len = sizeof(sa.in);
        } else if (inet_pton(AF_INET6, address, &sa.in6.sin6_addr) == 1) {
                sa.in6.sin6_family = AF_INET6;
                sa.in6.sin6_port = htons(port);
                len = sizeof(sa.in6);
                ipv6 = true;
        } else
                return -EINVAL;

        _cleanup_close_ int fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, &sa.sa, len) < 0)
                return -errno;
        if (listen(fd, 16) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        *ret_ipv6 = ipv6;
        return 0;
}

int metrics_server_new(MetricsServer **ret, sd_event *event, Manager *m, const char *address, uint16_t port) {
        _cleanup_(metrics_server_freep) MetricsServer *s = calloc(1, sizeof(*s));
        _cleanup_close_ int fd = -EBADF;
        bool ipv6 = false;
        int r;

        if (!s)
                return -ENOMEM;
        s->manager = m;

        r = metrics_listen(address, port, &fd, &ipv6);
        if (r < 0)
                return r;

        s->daemon = MHD_start_daemon(MHD_USE_EPOLL | (ipv6 ? MHD_USE_IPv6 : 0), 0, NULL, NULL,
                                     metrics_on_request, s,
                                     MHD_OPTION_LISTEN_SOCKET, fd,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned) METRICS_CONNECTION_LIMIT,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) METRICS_CONNECTION_TIMEOUT_SEC,
                                     MHD_OPTION_END);
        if (!s->daemon)
                return -ENOMEM;
        fd = -EBADF; /* MHD closes the listening socket in MHD_stop_daemon() */

        r = http_event_attach(&s->event, event, s->daemon, "metrics");
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

MetricsServer *metrics_server_free(MetricsServer *s) {
        if (!s)
                return NULL;
        s->event = http_event_free(s->event);
        if (s->daemon)
                MHD_stop_daemon(s->daemon);
        free(s);
        return NULL;
}
