/* Direct methods over HTTPS, as the Azure module SDKs call the gateway (libmicrohttpd on sd-event) */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "method-router/http-server.h"
#include "proto/iothub/iot-identity.h"
#include "proto/iothub/method-request.h"
#include "proto/ipc/auth-client.h"
#include "proto/runtime/http-event.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

#define PEM_FILE_MAX (1024u * 1024u)
#define IDLE_TIMEOUT_SEC 30u
#define CONNECTIONS_MAX 256u
/* One peer may hold this many: filling every slot takes CONNECTIONS_MAX / this addresses. */
#define CONNECTIONS_PER_PEER_MAX 8u
/*
 * From accept() until the request is read: the idle timeout alone lets a
 * client that sends a byte every IDLE_TIMEOUT_SEC hold a slot forever. The
 * wait for the device afterwards has its own limit (responseTimeoutInSeconds).
 */
#define REQUEST_DEADLINE_USEC (15u * 1000u * 1000u)
#define DEADLINE_SWEEP_USEC (1000u * 1000u)
/*
 * Debian's libmicrohttpd does TLS with GnuTLS: TLS 1.2 and 1.3 only, no
 * SHA-1 MACs (the CBC-SHA suites) and no SHA-1 signatures.
 */
#define TLS_PRIORITIES                                                                                        \
        "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-SHA1:-SIGN-RSA-SHA1:-SIGN-ECDSA-SHA1:-SIGN-DSA-SHA1:" \
        "%SERVER_PRECEDENCE"
/* A request carries at most METHOD_BODY_MAX of body; headers and MHD's own state fit in the rest. */
#define CONNECTION_MEMORY (64u * 1024u)
#define USERNAME_API "?api-version=2021-04-12"

typedef struct HttpRequest HttpRequest;
typedef struct HttpPeer HttpPeer;

/* A TCP connection until its request is read (REQUEST_DEADLINE_USEC). */
struct HttpPeer {
        HttpPeer *prev, *next;
        int fd;
        uint64_t deadline_usec; /* CLOCK_MONOTONIC; 0 once the request was read */
};

struct HttpServer {
        Manager *manager;
        struct MHD_Daemon *daemon;
        HttpEvent *event;       /* drives daemon from our loop */
        char *cert;
        char *key;
        HttpRequest *requests; /* every request MHD holds for us, for a clean stop */
        HttpPeer *peers;       /* every connection MHD holds, for the request deadline */
        sd_event_source *sweep;
        RateLimit refusal_log;
};

struct HttpRequest {
        HttpServer *server;
        struct MHD_Connection *connection;
        HttpPeer *peer;
        HttpRequest *prev, *next;
        char *body;
        size_t len;
        bool too_large;
        bool processed;
        bool suspended;
        char *target;   /* from the path */
        char *caller;   /* the admitted caller */
        Call *call;     /* while the device is called */
        int status;     /* 0 until answered */
        char *reply;
};

/* MHD takes a resumed connection back only in MHD_run(), and says nothing of it before: run it soon. */
static void server_kick(HttpServer *s) {
        http_event_kick(s->event);
}

static inline void http_server_freep(HttpServer **s) {
        if (*s)
                http_server_free(*s);
}

static void request_free(HttpRequest *req) {
        HttpServer *s = req->server;

        if (req->prev)
                req->prev->next = req->next;
        else
                s->requests = req->next;
        if (req->next)
                req->next->prev = req->prev;
        call_cancel(req->call);
        free(req->target);
        free(req->caller);
        free(req->body);
        free(req->reply);
        free(req);
}

static void request_answer(HttpRequest *req, int status, char *body) {
        req->status = status;
        free(req->reply);
        req->reply = body;
}

static enum MHD_Result request_queue_reply(HttpRequest *req) {
        static const char oom[] = "{\"errorCode\":\"ServerError\",\"message\":\"out of memory\"}";
        struct MHD_Response *response;
        enum MHD_Result ret;
        const char *body = req->reply ?: oom;

        response = MHD_create_response_from_buffer(strlen(body), (void *) body, MHD_RESPMEM_MUST_COPY);
        if (!response)
                return MHD_NO;
        (void) MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
        ret = MHD_queue_response(req->connection, (unsigned) (req->reply ? req->status : 500), response);
        MHD_destroy_response(response);
        return ret;
}

static void on_call_done(const CallResult *result, void *userdata) {
        HttpRequest *req = userdata;
        char *body = NULL;
        int status;

        req->call = NULL;
        status = manager_result_reply(result, &body);
        request_answer(req, status, body);
        if (req->suspended) {
                req->suspended = false;
                MHD_resume_connection(req->connection);
                server_kick(req->server);
        }
}

static void request_fail(HttpRequest *req, int status, const char *code, const char *text) {
        request_answer(req, status, manager_error_body(code, text));
}

/* The caller's SAS checked by auth-cache as if it connected: 0, or an HTTP status with the answer set. */
static int request_authenticate(HttpRequest *req, const char *caller, const char *token) {
        _cleanup_free_ char *username = NULL, *reason = NULL, *text = NULL;
        Manager *m = req->server->manager;
        int r, status;

        if (asprintf(&username, "%s/%s/%s", m->config->hub_hostname, caller, USERNAME_API) < 0)
                return -ENOMEM;
        AuthCredentials cred = { .client_id = caller, .username = username, .password = token };
        r = auth_client_check(&m->auth_cache, MANAGER_AUTH_TIMEOUT_USEC, &cred, &status, NULL, &reason);
        if (r < 0) {
                log_warning_errno(r, "Cannot ask auth-cache about caller '%s': %m", caller);
                request_fail(req, 503, "ServiceUnavailable", "the gateway's auth-cache is not reachable");
                return 503;
        }
        r = status;
        if (r == 0)
                return 0;
        log_ratelimit(&req->server->refusal_log, LOG_INFO, "Refused a method call by '%s': %s", caller,
                      reason ?: "refused");
        (void) asprintf(&text, "the caller '%s' is not authorized: %s", caller,
                        r == -ENOENT ? "not in this gateway's scope" : (reason ?: "refused"));
        request_fail(req, 401, "IotHubUnauthorizedAccess", text ?: "not authorized");
        return 401;
}

/*
 * Everything the headers decide, before a byte of the body is read: a
 * stranger cannot make us buffer 132 KiB. 0 to go on and read the body, or
 * 1 with the answer set.
 */
static int request_check_headers(HttpRequest *req, const char *url, const char *method) {
        _cleanup_free_ char *body = NULL, *cd = NULL, *cm = NULL;
        Manager *m = req->server->manager;
        const char *caller, *token, *length;
        int r, status;

        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0) {
                request_fail(req, 405, "MethodNotAllowed", "direct methods are invoked with POST");
                return 1;
        }
        if (method_target_from_path(url, &req->target) < 0) {
                request_fail(req, 404, "NotFound",
                             "no such resource; direct methods are POST /twins/{deviceId}/methods or "
                             "/twins/{deviceId}/modules/{moduleId}/methods");
                return 1;
        }

        caller = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, "x-ms-edge-moduleId");
        if (!caller || iot_identity_split(caller, &cd, &cm) < 0) {
                request_fail(req, 400, "ArgumentInvalid",
                             "the header x-ms-edge-moduleId must name the caller as {deviceId}/{moduleId}");
                return 1;
        }
        token = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (!token) {
                request_fail(req, 401, "IotHubUnauthorizedAccess",
                             "the Authorization header (the caller's SharedAccessSignature) is missing");
                return 1;
        }
        r = request_authenticate(req, caller, token);
        if (r != 0) {
                if (r < 0)
                        request_fail(req, 500, "ServerError", "out of memory");
                return 1;
        }
        status = manager_caller_check(m, caller, &body);
        if (status != 0) {
                log_ratelimit(&req->server->refusal_log, LOG_INFO, "Refused a method call by '%s': not a module of "
                              "this edge device", caller);
                request_answer(req, status, TAKE_PTR(body));
                return 1;
        }
        /* Only now: a stranger learns nothing, not even the size limit. */
        length = MHD_lookup_connection_value(req->connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && (strlen(length) > 9 || strtoul(length, NULL, 10) > METHOD_BODY_MAX)) {
                request_fail(req, 413, "MessageTooLarge", "the request body is larger than 128 KiB plus 4 KiB");
                return 1;
        }
        req->caller = strdup(caller);
        if (!req->caller) {
                request_fail(req, 500, "ServerError", "out of memory");
                return 1;
        }
        return 0;
}

/* The body is read and the caller was admitted by request_check_headers(). */
static void request_process(HttpRequest *req) {
        _cleanup_(method_request_deinit) MethodRequest mr = METHOD_REQUEST_NULL;
        _cleanup_free_ char *body = NULL;
        Manager *m = req->server->manager;
        const char *error = NULL;
        int r, status;

        if (req->too_large) {
                request_fail(req, 413, "MessageTooLarge", "the request body is larger than 128 KiB plus 4 KiB");
                return;
        }
        r = method_request_parse(req->body ?: "", req->len, &mr, &error);
        if (r < 0) {
                request_fail(req, r == -E2BIG ? 413 : 400, r == -E2BIG ? "MessageTooLarge" : "ArgumentInvalid",
                             error ?: "malformed request");
                return;
        }

        r = manager_invoke(m, req->caller, req->target, mr.name, mr.payload, mr.payload_len, mr.response_timeout_sec,
                           mr.connect_timeout_sec, on_call_done, req, &req->call, &status, &body);
        if (r > 0)
                request_answer(req, status, TAKE_PTR(body));
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
                                 const char *version, const char *upload_data, size_t *upload_data_size,
                                 void **con_cls) {
        HttpServer *s = cls;
        HttpRequest *req = *con_cls;

        if (!req) {
                const union MHD_ConnectionInfo *info;

                req = calloc(1, sizeof(*req));
                if (!req)
                        return MHD_NO;
                req->server = s;
                req->connection = connection;
                info = MHD_get_connection_info(connection, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
                req->peer = info ? info->socket_context : NULL;
                req->next = s->requests;
                if (s->requests)
                        s->requests->prev = req;
                s->requests = req;
                *con_cls = req;
                /* Refused on its headers: answered at once, and MHD discards the unread body. */
                if (request_check_headers(req, url, method) != 0) {
                        req->processed = true;
                        return request_queue_reply(req);
                }
                return MHD_YES;
        }

        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (req->processed)
                        return MHD_YES;
                if (req->too_large || req->len + n > METHOD_BODY_MAX) {
                        req->too_large = true; /* read to the end, answered 413 */
                        return MHD_YES;
                }
                char *b = realloc(req->body, req->len + n + 1);
                if (!b)
                        return MHD_NO;
                memcpy(b + req->len, upload_data, n);
                req->len += n;
                b[req->len] = '\0';
                req->body = b;
                return MHD_YES;
        }

        if (!req->processed) {
                req->processed = true;
                /* Read in time: from here the call's own timeout bounds the wait. */
                if (req->peer)
                        req->peer->deadline_usec = 0;
                request_process(req);
        }
        if (req->status == 0) {
                /* The device is being called: park the connection until on_call_done(). */
                req->suspended = true;
                MHD_suspend_connection(connection);
                return MHD_YES;
        }
        return request_queue_reply(req);
}

/* The sweep sleeps while no connection waits for its request; a stream of new
 * connections must not keep pushing it back, so only a sleeping one is woken. */
static void sweep_wake(HttpServer *s) {
        int enabled = SD_EVENT_OFF;

        (void) sd_event_source_get_enabled(s->sweep, &enabled);
        if (enabled != SD_EVENT_OFF)
                return;
        (void) sd_event_source_set_time_relative(s->sweep, DEADLINE_SWEEP_USEC);
        (void) sd_event_source_set_enabled(s->sweep, SD_EVENT_ONESHOT);
}

static void on_completed(void *cls, struct MHD_Connection *connection, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
        HttpRequest *req = *con_cls;

        if (req) {
                /* A kept-alive connection owes its next request within the same deadline. */
                if (req->peer) {
                        req->peer->deadline_usec = now_usec() + REQUEST_DEADLINE_USEC;
                        sweep_wake(req->server);
                }
                request_free(req);
        }
        *con_cls = NULL;
}

/* Each TCP connection, from accept() to close: the request deadline runs from accept(). */
static void on_connection(void *cls, struct MHD_Connection *connection, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
        HttpServer *s = cls;
        HttpPeer *peer = *socket_context;

        if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
                const union MHD_ConnectionInfo *info = MHD_get_connection_info(connection,
                                                                               MHD_CONNECTION_INFO_CONNECTION_FD);
                peer = calloc(1, sizeof(*peer));
                if (!peer || !info) {
                        /* Without a deadline it could be held forever: let it go at once. */
                        free(peer);
                        if (info)
                                (void) shutdown(info->connect_fd, SHUT_RDWR);
                        return;
                }
                peer->fd = info->connect_fd;
                peer->deadline_usec = now_usec() + REQUEST_DEADLINE_USEC;
                peer->next = s->peers;
                if (s->peers)
                        s->peers->prev = peer;
                s->peers = peer;
                *socket_context = peer;
                sweep_wake(s);
                return;
        }
        if (!peer)
                return;
        if (peer->prev)
                peer->prev->next = peer->next;
        else
                s->peers = peer->next;
        if (peer->next)
                peer->next->prev = peer->prev;
        for (HttpRequest *req = s->requests; req; req = req->next)
                if (req->peer == peer)
                        req->peer = NULL;
        free(peer);
        *socket_context = NULL;
}

/*
 * MHD has no call to drop a connection from outside its callbacks; a
 * shutdown() of the socket makes its next read fail, and MHD closes the
 * connection itself. The fd stays MHD's, so it cannot be reused under us.
 */
static int on_sweep(sd_event_source *source, uint64_t usec, void *userdata) {
        HttpServer *s = userdata;
        uint64_t now = now_usec();
        bool any = false, pending = false;

        for (HttpPeer *peer = s->peers; peer; peer = peer->next) {
                if (peer->deadline_usec != 0 && now < peer->deadline_usec)
                        pending = true;
                if (peer->deadline_usec != 0 && now >= peer->deadline_usec) {
                        log_ratelimit(&s->refusal_log, LOG_INFO,
                                      "Closed a methods connection that did not send its request in time");
                        (void) shutdown(peer->fd, SHUT_RDWR);
                        peer->deadline_usec = 0;
                        any = true;
                }
        }
        if (any)
                server_kick(s);
        if (pending) {
                (void) sd_event_source_set_time_relative(source, DEADLINE_SWEEP_USEC);
                (void) sd_event_source_set_enabled(source, SD_EVENT_ONESHOT);
        }
        return 0;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
        char line[256];

        /* TLS handshakes that fail and the like: a client's doing, not ours. */
        (void) vsnprintf(line, sizeof(line), fmt, ap);
        line[strcspn(line, "\n")] = '\0';
        log_debug("libmicrohttpd: %s", line);
}

static int read_pem(const char *path, char **ret) {
        _cleanup_free_ char *buf = NULL;
        FILE *f;
        size_t n;

        f = fopen(path, "re");
        if (!f)
                return -errno;
        buf = malloc(PEM_FILE_MAX + 1);
        n = buf ? fread(buf, 1, PEM_FILE_MAX + 1, f) : 0;
        int failed = ferror(f);
        fclose(f);
        if (!buf)
                return -ENOMEM;
        if (failed)
                return -EIO;
        if (n > PEM_FILE_MAX)
                return -EFBIG;
        buf[n] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

int http_server_new(HttpServer **ret, Manager *m) {
        const Config *c = m->config;
        struct sockaddr_storage addr = {};
        struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_PASSIVE, .ai_socktype = SOCK_STREAM };
        struct addrinfo *ai = NULL;
        _cleanup_(http_server_freep) HttpServer *s = NULL;
        char port[8];
        int r;

        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
                return log_error_errno(-EOPNOTSUPP, "This libmicrohttpd has no TLS support: cannot serve methods.port");

        snprintf(port, sizeof(port), "%u", c->methods_port);
        r = getaddrinfo(c->methods_bind, port, &hints, &ai);
        if (r != 0)
                return log_error_errno(-EINVAL, "methods.bind '%s' is not a numeric IPv4 or IPv6 address",
                                       c->methods_bind);
        memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
        freeaddrinfo(ai);

        s = calloc(1, sizeof(*s));
        if (!s)
                return log_error_errno(-ENOMEM, "Out of memory");
        s->manager = m;
        s->refusal_log = RATELIMIT_INIT(10u * 1000u * 1000u, 20u);

        r = read_pem(c->tls_cert_file, &s->cert);
        if (r < 0)
                return log_error_errno(r, "Cannot read listeners.tls.cert_file '%s': %m", c->tls_cert_file);
        r = read_pem(c->tls_key_file, &s->key);
        if (r < 0)
                return log_error_errno(r, "Cannot read listeners.tls.key_file '%s': %m", c->tls_key_file);

        s->daemon = MHD_start_daemon(
                MHD_USE_TLS | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                        (addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                c->methods_port, NULL, NULL, on_access, s,
                MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s,
                MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
                MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned) 1,
                MHD_OPTION_HTTPS_MEM_CERT, s->cert,
                MHD_OPTION_HTTPS_MEM_KEY, s->key,
                MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) IDLE_TIMEOUT_SEC,
                MHD_OPTION_CONNECTION_LIMIT, (unsigned) CONNECTIONS_MAX,
                MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONNECTION_MEMORY,
                MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned) CONNECTIONS_PER_PEER_MAX,
                MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITIES,
                MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                MHD_OPTION_END);
        if (!s->daemon)
                return log_error_errno(-EADDRNOTAVAIL,
                                       "Cannot serve HTTPS on %s:%u (methods.bind, methods.port): in use, not "
                                       "allowed, or a bad certificate/key in listeners.tls",
                                       c->methods_bind, c->methods_port);

        r = http_event_attach(&s->event, m->event, s->daemon, "methods-https");
        if (r < 0)
                return log_error_errno(r, "Cannot watch the HTTPS listener: %m");
        r = sd_event_add_time_relative(m->event, &s->sweep, CLOCK_MONOTONIC, DEADLINE_SWEEP_USEC, 100000, on_sweep,
                                       s);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the HTTPS request deadline: %m");
        (void) sd_event_source_set_enabled(s->sweep, SD_EVENT_OFF);
        (void) sd_event_source_set_description(s->sweep, "methods-https-deadline");
        log_info("Serving direct methods on https://%s:%u", c->methods_bind, c->methods_port);
        *ret = TAKE_PTR(s);
        return 0;
}

HttpServer *http_server_free(HttpServer *s) {
        if (!s)
                return NULL;
        /* MHD refuses to stop with suspended connections: end their calls and let them go. */
        for (HttpRequest *req = s->requests; req; req = req->next) {
                call_cancel(req->call);
                req->call = NULL;
                if (req->suspended) {
                        req->suspended = false;
                        MHD_resume_connection(req->connection);
                }
        }
        if (s->daemon)
                MHD_stop_daemon(s->daemon); /* frees what is left through on_completed() */
        /* Requests MHD never reported complete (none expected). */
        while (s->requests)
                request_free(s->requests);
        while (s->peers) {
                HttpPeer *peer = s->peers;
                s->peers = peer->next;
                free(peer);
        }
        s->sweep = sd_event_source_disable_unref(s->sweep);
        s->event = http_event_free(s->event);
        free(s->cert);
        free(s->key);
        free(s);
        return NULL;
}
