/* HTTPS GET requests on sd-event: the one entry point of libcurl */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "proto/util/cleanup.h"

/*
 * libcurl's multi interface driven by the daemon's loop (socket and timer
 * callbacks mapped to sd-event sources), so a slow or dead upstream never
 * blocks the loop and the watchdog keeps being fed.
 */
typedef struct HttpClient HttpClient;
typedef struct HttpRequest HttpRequest;

typedef struct HttpGet {
        const char *url;
        const char *authorization;    /* the Authorization header value, or NULL */
        const char *ca_file;          /* NULL: the system trust store */
        uint64_t connect_timeout_msec;
        uint64_t timeout_msec;        /* the whole request */
        size_t max_body;              /* a longer body fails the request with -EFBIG */
} HttpGet;

/*
 * Called once per request, from the loop: error is 0 when an HTTP response
 * arrived (any status), else -errno (-ETIMEDOUT, -ECONNREFUSED,
 * -EHOSTUNREACH, -EPROTO for TLS failures, -EFBIG, -EIO) with error_text
 * saying why in one line. The request is freed after the callback returns;
 * the callback may start new requests.
 */
typedef void (*HttpDoneFunc)(HttpRequest *req, int error, const char *error_text, long status,
                             const uint8_t *body, size_t body_len, void *userdata);

int http_client_new(HttpClient **ret, sd_event *e);
/* Cancels pending requests without calling their callbacks. */
HttpClient *http_client_free(HttpClient *c);

int http_client_get(HttpClient *c, const HttpGet *get, HttpDoneFunc done, void *userdata, HttpRequest **ret);
/* Aborts a pending request; its callback is not called. Accepts NULL. */
HttpRequest *http_request_cancel(HttpRequest *req);

DEFINE_CLEANUP_FUNC(HttpClient, http_client_free);
