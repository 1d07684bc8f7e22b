/* A libmosquitto client driven by an sd-event loop (no thread of its own) */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "proto/runtime/mosq-event.h"

/* Reads per readiness event at most: more than a send window's worth of acknowledgements. */
#define MOSQ_EVENT_READS_MAX 256

struct MosqEvent {
        sd_event *event;
        struct mosquitto *mosq;
        MosqEventOps ops;
        void *userdata;
        char *description;
        sd_event_source *io_source;
        sd_event_source *misc_source; /* mosquitto_loop_misc(); also reports a lost connection from the loop */
        uint64_t misc_usec;
        bool connect_pending;         /* connect_async: the socket has not been writable yet */
        bool lost;
        bool reported;                /* ops->lost was called */
};

struct mosquitto *mosq_event_client(const MosqEvent *m) {
        return m ? m->mosq : NULL;
}

bool mosq_event_is_lost(const MosqEvent *m) {
        return !m || m->lost;
}

static int socket_error(int fd) {
        int error = 0;
        socklen_t len = sizeof(error);

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                return -errno;
        return -error;
}

void mosq_event_update(MosqEvent *m) {
        uint32_t events = EPOLLIN;

        if (!m || !m->io_source || m->lost)
                return;
        SSL *ssl = mosquitto_ssl_get(m->mosq);
        if (m->connect_pending)
                events |= EPOLLOUT; /* the non-blocking connect completes with writability */
        else if (ssl && !SSL_is_init_finished(ssl)) {
                /* During the handshake queued packets must wait: only OpenSSL's wishes count. */
                if (SSL_want_write(ssl))
                        events |= EPOLLOUT;
        } else if (mosquitto_want_write(m->mosq))
                events |= EPOLLOUT;
        (void) sd_event_source_set_io_events(m->io_source, events);
}

/* Once: the sources stop and the owner hears it. The owner may free m: touch nothing after. */
static void mosq_event_report_lost(MosqEvent *m, int rc, int error) {
        if (m->reported)
                return;
        m->reported = true;
        m->lost = true;
        (void) sd_event_source_set_enabled(m->io_source, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(m->misc_source, SD_EVENT_OFF);
        m->ops.lost(m->userdata, rc, error);
}

/* The end of every turn; either callback may free m. */
static void mosq_event_done(MosqEvent *m, int rc, int error) {
        if (rc != MOSQ_ERR_SUCCESS || m->lost) {
                mosq_event_report_lost(m, rc, error);
                return;
        }
        mosq_event_update(m);
        if (m->ops.processed)
                m->ops.processed(m->userdata);
}

/* Reads until the socket is drained; OpenSSL may hold decrypted bytes epoll cannot see. */
static int mosq_event_read(MosqEvent *m, int *error) {
        for (int i = 0; i < MOSQ_EVENT_READS_MAX; i++) {
                errno = 0;
                int rc = mosquitto_loop_read(m->mosq, 1);
                if (rc == MOSQ_ERR_ERRNO)
                        *error = -errno;
                if (rc != MOSQ_ERR_SUCCESS || m->lost)
                        return rc;
                SSL *ssl = mosquitto_ssl_get(m->mosq);
                if (ssl && !SSL_is_init_finished(ssl))
                        return MOSQ_ERR_SUCCESS;
                if (ssl && SSL_pending(ssl) > 0)
                        continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                        return MOSQ_ERR_SUCCESS;
        }
        return MOSQ_ERR_SUCCESS;
}

static int mosq_event_write(MosqEvent *m, int *error) {
        if (!mosquitto_want_write(m->mosq))
                return MOSQ_ERR_SUCCESS;
        errno = 0;
        int rc = mosquitto_loop_write(m->mosq, 1);
        if (rc == MOSQ_ERR_ERRNO)
                *error = -errno;
        return rc;
}

static int mosq_event_on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        MosqEvent *m = userdata;
        int rc, error = 0;

        if (m->connect_pending) {
                int r = socket_error(fd);
                if (r < 0 || !(revents & (EPOLLOUT | EPOLLIN))) {
                        mosq_event_report_lost(m, MOSQ_ERR_CONN_LOST, r);
                        return 0;
                }
                m->connect_pending = false;
        }

        /* Reading also drives the TLS handshake (libmosquitto's want_connect). */
        rc = mosq_event_read(m, &error);
        if (rc == MOSQ_ERR_SUCCESS && !m->lost)
                rc = mosq_event_write(m, &error);
        if (rc == MOSQ_ERR_SUCCESS && !m->lost && (revents & (EPOLLHUP | EPOLLERR))) {
                /* libmosquitto swallows socket errors during the TLS handshake: do not spin on them. */
                mosq_event_report_lost(m, MOSQ_ERR_CONN_LOST, socket_error(fd));
                return 0;
        }
        mosq_event_done(m, rc, error);
        return 0;
}

void mosq_event_misc(MosqEvent *m) {
        int rc, error = 0;

        if (m->lost) {
                mosq_event_report_lost(m, MOSQ_ERR_SUCCESS, 0);
                return;
        }
        errno = 0;
        rc = mosquitto_loop_misc(m->mosq);
        if (rc == MOSQ_ERR_ERRNO)
                error = -errno;
        if (rc == MOSQ_ERR_SUCCESS && !m->lost)
                rc = mosq_event_write(m, &error);
        mosq_event_done(m, rc, error);
}

static int mosq_event_on_misc(sd_event_source *s, uint64_t usec, void *userdata) {
        MosqEvent *m = userdata;

        if (m->misc_usec > 0)
                (void) sd_event_source_set_time_relative(s, m->misc_usec);
        mosq_event_misc(m);
        return 0;
}

void mosq_event_lost(MosqEvent *m) {
        if (!m || m->lost)
                return;
        m->lost = true;
        /* Not from here: the caller may be inside libmosquitto, or about to use the client. */
        (void) sd_event_source_set_time_relative(m->misc_source, 0);
        (void) sd_event_source_set_enabled(m->misc_source, m->misc_usec > 0 ? SD_EVENT_ON : SD_EVENT_ONESHOT);
}

static void mosq_event_describe(MosqEvent *m, sd_event_source *s, const char *suffix) {
        char name[64];

        (void) snprintf(name, sizeof(name), "%s-%s", m->description, suffix);
        (void) sd_event_source_set_description(s, name);
}

int mosq_event_new(MosqEvent **ret, sd_event *e, const char *client_id, uint64_t misc_usec, const MosqEventOps *ops,
                   void *userdata, const char *description) {
        _cleanup_(mosq_event_freep) MosqEvent *m = calloc(1, sizeof(*m));
        int r;

        if (!m)
                return -ENOMEM;
        m->event = sd_event_ref(e);
        m->ops = *ops;
        m->userdata = userdata;
        m->misc_usec = misc_usec;
        m->description = strdup(description);
        if (!m->description)
                return -ENOMEM;
        m->mosq = mosquitto_new(client_id, true, userdata);
        if (!m->mosq)
                return errno == EINVAL ? -EINVAL : -ENOMEM;
        r = sd_event_add_time_relative(e, &m->misc_source, CLOCK_MONOTONIC, misc_usec, 0, mosq_event_on_misc, m);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(m->misc_source, SD_EVENT_OFF);
        mosq_event_describe(m, m->misc_source, "misc");
        *ret = TAKE_PTR(m);
        return 0;
}

int mosq_event_attach(MosqEvent *m, bool connect_pending) {
        int fd, r;

        if (m->io_source)
                return -EBUSY;
        fd = mosquitto_socket(m->mosq);
        if (fd < 0)
                return -ENOTCONN;
        /* libmosquitto opens its socket without it; our daemons start children (the agent's modules). */
        (void) fcntl(fd, F_SETFD, FD_CLOEXEC);
        m->connect_pending = connect_pending;
        r = sd_event_add_io(m->event, &m->io_source, fd, EPOLLIN | (connect_pending ? EPOLLOUT : 0), mosq_event_on_io,
                            m);
        if (r < 0)
                return r;
        mosq_event_describe(m, m->io_source, "io");
        if (m->misc_usec > 0) {
                (void) sd_event_source_set_time_relative(m->misc_source, m->misc_usec);
                r = sd_event_source_set_enabled(m->misc_source, SD_EVENT_ON);
                if (r < 0)
                        return r;
        }
        mosq_event_update(m);
        return 0;
}

MosqEvent *mosq_event_free(MosqEvent *m) {
        if (!m)
                return NULL;
        /* The io source first: the fd number dies with the client and may be reused by the next connect. */
        m->io_source = sd_event_source_disable_unref(m->io_source);
        m->misc_source = sd_event_source_disable_unref(m->misc_source);
        if (m->mosq)
                mosquitto_destroy(m->mosq);
        free(m->description);
        sd_event_unref(m->event);
        free(m);
        return NULL;
}
