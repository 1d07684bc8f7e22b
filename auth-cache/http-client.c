/* HTTPS GET requests on sd-event: the one entry point of libcurl */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "auth-cache/http-client.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

struct HttpClient {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        HttpRequest *requests;
        bool curl_initialized;
};

struct HttpRequest {
        HttpClient *client;
        HttpRequest *prev, *next;
        CURL *easy;
        struct curl_slist *headers;
        uint8_t *body;
        size_t body_len, body_cap, max_body;
        bool too_big;
        bool completing;
        HttpDoneFunc done;
        void *userdata;
        char error[CURL_ERROR_SIZE];
};

static void request_free(HttpRequest *req) {
        if (!req)
                return;
        if (req->easy) {
                if (req->client && req->client->multi)
                        (void) curl_multi_remove_handle(req->client->multi, req->easy);
                curl_easy_cleanup(req->easy);
        }
        /* The Authorization header holds a token: don't leave it in freed memory. */
        for (struct curl_slist *h = req->headers; h; h = h->next)
                explicit_bzero(h->data, strlen(h->data));
        curl_slist_free_all(req->headers);
        free(req->body);
        free(req);
}

static void request_unlink(HttpRequest *req) {
        HttpClient *c = req->client;

        if (req->prev)
                req->prev->next = req->next;
        else if (c && c->requests == req)
                c->requests = req->next;
        if (req->next)
                req->next->prev = req->prev;
        req->prev = req->next = NULL;
}

HttpRequest *http_request_cancel(HttpRequest *req) {
        if (!req || req->completing)
                return NULL;
        request_unlink(req);
        request_free(req);
        return NULL;
}

static int curl_code_to_errno(CURLcode code, bool too_big) {
        switch (code) {
        case CURLE_OK:
                return 0;
        case CURLE_WRITE_ERROR:
                return too_big ? -EFBIG : -EIO;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
        case CURLE_SSL_INVALIDCERTSTATUS:
                return -EPROTO;
        default:
                return -EIO;
        }
}

/* Completed transfers: each callback runs outside curl's own callbacks, as curl requires. */
static void client_check_done(HttpClient *c) {
        CURLMsg *msg;
        int left;

        while ((msg = curl_multi_info_read(c->multi, &left))) {
                HttpRequest *req = NULL;
                long status = 0;
                int error;

                if (msg->msg != CURLMSG_DONE)
                        continue;
                (void) curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &req);
                if (!req)
                        continue;
                error = curl_code_to_errno(msg->data.result, req->too_big);
                if (error == 0)
                        (void) curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
                const char *text = error == 0 ? NULL
                                   : req->too_big ? "response too large"
                                   : req->error[0] ? req->error
                                   : curl_easy_strerror(msg->data.result);

                request_unlink(req);
                (void) curl_multi_remove_handle(c->multi, req->easy);
                req->completing = true;
                req->done(req, error, text, status, req->body, req->body_len, req->userdata);
                request_free(req);
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        HttpClient *c = userdata;
        int action = 0, running;

        if (revents & EPOLLIN)
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & (EPOLLERR | EPOLLHUP))
                action |= CURL_CSELECT_ERR;
        (void) curl_multi_socket_action(c->multi, fd, action, &running);
        client_check_done(c);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        HttpClient *c = userdata;
        int running;

        (void) curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        client_check_done(c);
        return 0;
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
        HttpClient *c = userp;
        sd_event_source *io = socketp;
        uint32_t events = 0;
        int r;

        if (what == CURL_POLL_REMOVE) {
                if (io) {
                        (void) sd_event_source_disable_unref(io);
                        (void) curl_multi_assign(c->multi, fd, NULL);
                }
                return 0;
        }

        if (what & CURL_POLL_IN)
                events |= EPOLLIN;
        if (what & CURL_POLL_OUT)
                events |= EPOLLOUT;
        if (io) {
                r = sd_event_source_set_io_events(io, events);
                if (r >= 0)
                        r = sd_event_source_set_enabled(io, SD_EVENT_ON);
        } else {
                r = sd_event_add_io(c->event, &io, fd, events, on_io, c);
                if (r >= 0) {
                        (void) sd_event_source_set_description(io, "curl-io");
                        if (curl_multi_assign(c->multi, fd, io) != CURLM_OK) {
                                io = sd_event_source_disable_unref(io);
                                r = -ENOMEM;
                        }
                }
        }
        if (r < 0) {
                log_debug_errno(r, "Failed to watch an HTTP socket: %m");
                return -1;
        }
        return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_msec, void *userp) {
        HttpClient *c = userp;
        struct timespec ts;
        uint64_t usec;
        int r;

        if (timeout_msec < 0) {
                if (c->timer)
                        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
                return 0;
        }
        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        usec = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u + (uint64_t) timeout_msec * 1000u;
        if (c->timer) {
                r = sd_event_source_set_time(c->timer, usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
        } else {
                /* 1 ms accuracy: the default 250 ms slack would stretch curl's timeouts. */
                r = sd_event_add_time(c->event, &c->timer, CLOCK_MONOTONIC, usec, 1000, on_timer, c);
                if (r >= 0)
                        (void) sd_event_source_set_description(c->timer, "curl-timer");
        }
        if (r < 0) {
                log_debug_errno(r, "Failed to arm the HTTP timer: %m");
                return -1;
        }
        return 0;
}

int http_client_new(HttpClient **ret, sd_event *e) {
        _cleanup_(http_client_freep) HttpClient *c = NULL;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        /* Reference-counted by libcurl; with SSL it must happen before any thread exists. */
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return -EIO;
        c->curl_initialized = true;
        c->multi = curl_multi_init();
        if (!c->multi)
                return -ENOMEM;
        if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer) != CURLM_OK ||
            curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK)
                return -EIO;

        *ret = TAKE_PTR(c);
        return 0;
}

HttpClient *http_client_free(HttpClient *c) {
        if (!c)
                return NULL;
        while (c->requests) {
                HttpRequest *req = c->requests;
                request_unlink(req);
                request_free(req);
        }
        if (c->multi)
                (void) curl_multi_cleanup(c->multi);
        c->timer = sd_event_source_disable_unref(c->timer);
        if (c->curl_initialized)
                curl_global_cleanup();
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
        HttpRequest *req = userdata;
        size_t len = size * n;

        if (len > req->max_body - req->body_len) {
                req->too_big = true;
                return 0; /* makes curl fail with CURLE_WRITE_ERROR */
        }
        if (req->body_len + len > req->body_cap) {
                size_t cap = req->body_cap ? req->body_cap : 16384;
                while (cap < req->body_len + len)
                        cap *= 2;
                if (cap > req->max_body)
                        cap = req->max_body;
                uint8_t *b = realloc(req->body, cap);
                if (!b)
                        return 0;
                req->body = b;
                req->body_cap = cap;
        }
        memcpy(req->body + req->body_len, data, len);
        req->body_len += len;
        return len;
}

/* Every fd of ours is O_CLOEXEC (STYLE.md §13); curl opens its sockets without. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a) {
        return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

int http_client_get(HttpClient *c, const HttpGet *get, HttpDoneFunc done, void *userdata, HttpRequest **ret) {
        HttpRequest *req;
        CURLcode cc = CURLE_OK;

        req = calloc(1, sizeof(*req));
        if (!req)
                return -ENOMEM;
        req->client = c;
        req->done = done;
        req->userdata = userdata;
        req->max_body = get->max_body;
        req->easy = curl_easy_init();
        if (!req->easy) {
                request_free(req);
                return -ENOMEM;
        }

        struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
        if (h)
                req->headers = h;
        if (h && get->authorization) {
                _cleanup_free_ char *line = NULL;
                if (asprintf(&line, "Authorization: %s", get->authorization) < 0)
                        line = NULL;
                h = line ? curl_slist_append(req->headers, line) : NULL;
                if (line)
                        explicit_bzero(line, strlen(line));
                if (h)
                        req->headers = h;
        }
        if (!h) {
                request_free(req);
                return -ENOMEM;
        }

#define SET(opt, val) if (cc == CURLE_OK) cc = curl_easy_setopt(req->easy, opt, val)
        SET(CURLOPT_URL, get->url);
        SET(CURLOPT_PROTOCOLS_STR, "https");
        SET(CURLOPT_HTTPGET, 1L);
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_HTTPHEADER, req->headers);
        SET(CURLOPT_USERAGENT, "edgehub-auth-cache");
        SET(CURLOPT_ACCEPT_ENCODING, "");
        SET(CURLOPT_CONNECTTIMEOUT_MS, (long) get->connect_timeout_msec);
        SET(CURLOPT_TIMEOUT_MS, (long) get->timeout_msec);
        SET(CURLOPT_WRITEFUNCTION, on_body);
        SET(CURLOPT_WRITEDATA, req);
        SET(CURLOPT_OPENSOCKETFUNCTION, open_socket);
        SET(CURLOPT_PRIVATE, req);
        SET(CURLOPT_ERRORBUFFER, req->error);
        if (get->ca_file)
                SET(CURLOPT_CAINFO, get->ca_file);
#undef SET
        if (cc != CURLE_OK) {
                log_debug("Failed to set up an HTTP request: %s", curl_easy_strerror(cc));
                request_free(req);
                return cc == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
        }

        if (curl_multi_add_handle(c->multi, req->easy) != CURLM_OK) {
                request_free(req);
                return -EIO;
        }
        req->next = c->requests;
        if (c->requests)
                c->requests->prev = req;
        c->requests = req;

        if (ret)
                *ret = req;
        return 0;
}
