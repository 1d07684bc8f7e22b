/* A Unix-socket request/reply server on sd-event */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/ipc/server.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

/* Replies pile up only if a peer stops reading; past this we stop reading it too. */
#define PEER_OUTPUT_MAX (4u * 1024u * 1024u)
#define PEERS_MAX 1024u

typedef struct Peer Peer;

struct FrameServer {
        sd_event *event;
        sd_event_source *listen_source;
        char *path;
        int listen_fd;
        FrameHandler handler;
        void *userdata;
        Peer *peers;
        unsigned n_peers;
        RateLimit warn_limit;
        int64_t priority;
        FrameAccess access;
        AccessPolicy policy;
};

struct Peer {
        FrameServer *server;
        Peer *prev, *next;
        int fd;
        PeerCred cred;
        sd_event_source *source;
        uint8_t *in;
        size_t in_len, in_cap;
        uint8_t *out;
        size_t out_len, out_cap, out_off;
};

static Peer *peer_free(Peer *p) {
        if (!p)
                return NULL;
        if (p->server) {
                if (p->prev)
                        p->prev->next = p->next;
                else
                        p->server->peers = p->next;
                if (p->next)
                        p->next->prev = p->prev;
                p->server->n_peers--;
        }
        sd_event_source_disable_unref(p->source);
        safe_close(p->fd);
        free(p->in);
        free(p->out);
        free(p);
        return NULL;
}

/* At most a few warnings a second, however much garbage arrives. */
static void server_warn_peer(FrameServer *s, int error, const char *what) {
        log_ratelimit_warning(&s->warn_limit, "%s: %s, disconnecting peer: %s", s->path, what,
                              strerror(error < 0 ? -error : error));
}

static int peer_append_output(Peer *p, const uint8_t *buf, size_t len) {
        if (p->out_len + len > p->out_cap) {
                size_t cap = p->out_cap ? p->out_cap : 4096;
                while (cap < p->out_len + len)
                        cap *= 2;
                uint8_t *n = realloc(p->out, cap);
                if (!n)
                        return -ENOMEM;
                p->out = n;
                p->out_cap = cap;
        }
        memcpy(p->out + p->out_len, buf, len);
        p->out_len += len;
        return 0;
}

static int peer_flush(Peer *p) {
        while (p->out_off < p->out_len) {
                ssize_t n = send(p->fd, p->out + p->out_off, p->out_len - p->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return -errno;
                }
                p->out_off += (size_t) n;
        }
        if (p->out_off == p->out_len)
                p->out_off = p->out_len = 0;

        uint32_t events = 0;
        if (p->out_len < PEER_OUTPUT_MAX)
                events |= EPOLLIN;
        if (p->out_len > 0)
                events |= EPOLLOUT;
        return sd_event_source_set_io_events(p->source, events);
}

/* 0: let the handler answer; 1: refused, *reply says so; <0: close the peer. */
static int peer_check_access(Peer *p, const Frame *request, FrameBuilder *reply) {
        FrameServer *s = p->server;
        _cleanup_free_ char *command = NULL, *error = NULL;

        if (!s->access)
                return 0;
        unsigned needed = s->access(s->userdata, request);
        if (peer_rights(&s->policy, &p->cred) & needed)
                return 0;
        /* Every request type is odd and its reply follows it (proto/ipc/wire.h). */
        if (request->type == 0 || request->type >= _WIRE_TYPE_MAX || request->type % 2 == 0)
                return -EBADMSG;
        if (request->type == WIRE_CONTROL_REQUEST)
                (void) frame_get_string(request, WIRE_COMMAND, &command);
        char what[64];
        if (command)
                snprintf(what, sizeof(what), "'%.40s'", command);
        else
                snprintf(what, sizeof(what), "request type %u", (unsigned) request->type);
        if (asprintf(&error, "permission denied: uid %u may not send %s on %s (%s)", (unsigned) p->cred.uid, what,
                     s->path, peer_rights_describe(needed)) < 0)
                return -ENOMEM;
        log_ratelimit_warning(&s->warn_limit, "%s: refused pid %d: %s", s->path, (int) p->cred.pid, error);
        wire_reply_init(reply, (uint16_t) (request->type + 1), EACCES, error);
        return 1;
}

/* Handles every complete frame in the input buffer. */
static int peer_dispatch(Peer *p) {
        size_t off = 0;
        int r = 0;

        while (p->in_len - off >= FRAME_HEADER_SIZE) {
                uint32_t len;
                r = frame_header_parse(p->in + off, &len);
                if (r < 0) {
                        server_warn_peer(p->server, r, "oversized or malformed frame header");
                        return r;
                }
                if (p->in_len - off - FRAME_HEADER_SIZE < len)
                        break;

                Frame request;
                r = frame_parse(&request, p->in + off + FRAME_HEADER_SIZE, len);
                if (r < 0) {
                        server_warn_peer(p->server, r, "malformed frame");
                        return r;
                }
                off += FRAME_HEADER_SIZE + len;

                FrameBuilder reply = FRAME_BUILDER_NULL;
                r = peer_check_access(p, &request, &reply);
                if (r == 0)
                        r = p->server->handler(p->server->userdata, &request, &reply);
                if (r >= 0)
                        r = frame_builder_finish(&reply);
                if (r >= 0)
                        r = peer_append_output(p, reply.buf, reply.len);
                frame_builder_deinit(&reply);
                if (r < 0) {
                        server_warn_peer(p->server, r, "request refused");
                        return r;
                }
        }

        memmove(p->in, p->in + off, p->in_len - off);
        p->in_len -= off;
        return 0;
}

static int peer_on_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        Peer *p = userdata;
        int r;

        if (revents & EPOLLIN) {
                if (p->in_cap - p->in_len < 65536) {
                        size_t cap = p->in_cap ? p->in_cap * 2 : 65536;
                        if (cap > FRAME_BODY_MAX + FRAME_HEADER_SIZE + 65536)
                                cap = FRAME_BODY_MAX + FRAME_HEADER_SIZE + 65536;
                        if (cap > p->in_cap) {
                                uint8_t *n = realloc(p->in, cap);
                                if (!n) {
                                        peer_free(p);
                                        return 0;
                                }
                                p->in = n;
                                p->in_cap = cap;
                        }
                }
                ssize_t n = recv(fd, p->in + p->in_len, p->in_cap - p->in_len, MSG_DONTWAIT);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                        peer_free(p);
                        return 0;
                }
                if (n > 0) {
                        p->in_len += (size_t) n;
                        r = peer_dispatch(p);
                        if (r < 0) {
                                peer_free(p);
                                return 0;
                        }
                }
        } else if (revents & (EPOLLHUP | EPOLLERR)) {
                peer_free(p);
                return 0;
        }

        r = peer_flush(p);
        if (r < 0)
                peer_free(p);
        return 0;
}

static int server_on_accept(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        FrameServer *s = userdata;

        _cleanup_close_ int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0) {
                if (errno != EAGAIN && errno != EINTR)
                        log_warning_errno(-errno, "%s: accept failed, ignoring: %m", s->path);
                return 0;
        }
        if (s->n_peers >= PEERS_MAX) {
                server_warn_peer(s, -EMFILE, "too many peers");
                return 0;
        }

        Peer *p = calloc(1, sizeof(*p));
        if (!p)
                return 0;
        p->fd = TAKE_FD(cfd);
        /* Always there on AF_UNIX; a peer we cannot name (uid -1) has no rights at all. */
        (void) peer_cred_get(p->fd, &p->cred);
        int r = sd_event_add_io(s->event, &p->source, p->fd, EPOLLIN, peer_on_io, p);
        if (r < 0) {
                peer_free(p);
                return 0;
        }
        (void) sd_event_source_set_description(p->source, "frame-peer");
        (void) sd_event_source_set_priority(p->source, s->priority);
        p->server = s;
        p->next = s->peers;
        if (s->peers)
                s->peers->prev = p;
        s->peers = p;
        s->n_peers++;
        return 0;
}

int frame_server_new(FrameServer **ret, sd_event *e, const char *path, mode_t mode,
                     FrameHandler handler, void *userdata) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);

        _cleanup_(frame_server_freep) FrameServer *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->listen_fd = -1;
        s->warn_limit = RATELIMIT_INIT(1000000u, 5);
        s->handler = handler;
        s->userdata = userdata;
        s->event = sd_event_ref(e);
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;

        s->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s->listen_fd < 0)
                return -errno;
        /* A stale socket from a killed predecessor would make bind() fail. */
        (void) unlink(path);
        if (bind(s->listen_fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        if (chmod(path, mode) < 0)
                return -errno;
        if (listen(s->listen_fd, 128) < 0)
                return -errno;

        r = sd_event_add_io(e, &s->listen_source, s->listen_fd, EPOLLIN, server_on_accept, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s->listen_source, "frame-listen");
        /* A daemon without its socket is useless: failing here ends the loop. */
        (void) sd_event_source_set_exit_on_failure(s->listen_source, true);

        *ret = TAKE_PTR(s);
        return 0;
}

FrameServer *frame_server_free(FrameServer *s) {
        if (!s)
                return NULL;
        while (s->peers)
                peer_free(s->peers);
        sd_event_source_disable_unref(s->listen_source);
        if (s->listen_fd >= 0) {
                safe_close(s->listen_fd);
                (void) unlink(s->path);
        }
        free(s->path);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void frame_server_set_priority(FrameServer *s, int64_t priority) {
        s->priority = priority;
        (void) sd_event_source_set_priority(s->listen_source, priority);
        for (Peer *p = s->peers; p; p = p->next)
                (void) sd_event_source_set_priority(p->source, priority);
}

void frame_server_set_access(FrameServer *s, const AccessPolicy *policy, FrameAccess access) {
        s->policy = *policy;
        s->access = access;
}

int frame_server_set_access_from_config(FrameServer *s, const Config *c, FrameAccess access) {
        _cleanup_free_ char *warning = NULL;
        AccessPolicy policy;

        int r = access_policy_from_config(c, &policy, &warning);
        if (r < 0)
                return r;
        if (warning)
                log_notice("%s: %s", s->path, warning);
        frame_server_set_access(s, &policy, access);
        return 0;
}

unsigned wire_control_access(const Frame *request, const char *const *admin) {
        _cleanup_free_ char *command = NULL;

        if (request->type != WIRE_CONTROL_REQUEST || frame_get_string(request, WIRE_COMMAND, &command) < 0)
                return PEER_READ;
        for (size_t i = 0; admin && admin[i]; i++)
                if (strcmp(admin[i], command) == 0)
                        return PEER_ADMIN;
        return PEER_READ;
}

void wire_reply_init(FrameBuilder *reply, uint16_t type, int status, const char *error) {
        frame_builder_init(reply, type);
        frame_builder_add_u32(reply, WIRE_STATUS, (uint32_t) (status < 0 ? -status : status));
        if (error)
                frame_builder_add_string(reply, WIRE_ERROR, error);
}

void wire_reply_json(FrameBuilder *reply, const json_t *result) {
        _cleanup_free_ char *text = result ? json_dumps(result, JSON_COMPACT) : NULL;

        if (!text) {
                wire_reply_init(reply, WIRE_CONTROL_REPLY, ENOMEM, "out of memory");
                return;
        }
        wire_reply_init(reply, WIRE_CONTROL_REPLY, 0, NULL);
        frame_builder_add_string(reply, WIRE_JSON, text);
}

int wire_control_request_parse(const Frame *request, char **ret_command, char **ret_argument, FrameBuilder *reply) {
        _cleanup_free_ char *command = NULL, *argument = NULL;
        int r;

        if (request->type != WIRE_CONTROL_REQUEST) {
                /* Not ours: a confused or hostile peer. Closing it is the answer. */
                log_debug("Unexpected request type %u, closing the connection", (unsigned) request->type);
                return -EBADMSG;
        }
        if (frame_get_string(request, WIRE_COMMAND, &command) < 0) {
                wire_reply_init(reply, WIRE_CONTROL_REPLY, EINVAL, "command is required");
                return 1;
        }
        r = frame_get_string(request, WIRE_ARGUMENT, &argument);
        if (r < 0 && r != -ENOENT) {
                wire_reply_init(reply, WIRE_CONTROL_REPLY, EINVAL, "malformed argument");
                return 1;
        }
        *ret_command = TAKE_PTR(command);
        *ret_argument = TAKE_PTR(argument);
        return 0;
}

bool wire_control_dispatch(const WireControlCommand *table, size_t n, void *userdata, const Frame *request,
                           const char *command, const char *argument, FrameBuilder *reply) {
        for (size_t i = 0; i < n; i++) {
                const char *error = NULL;
                if (strcmp(table[i].name, command) != 0)
                        continue;
                json_auto_t *result = table[i].run(userdata, request, argument, &error);
                if (!result && error)
                        wire_reply_init(reply, WIRE_CONTROL_REPLY, table[i].error_status ?: ENOENT, error);
                else
                        wire_reply_json(reply, result);
                return true;
        }
        return false;
}

int wire_control_serve(const WireControlCommand *table, size_t n, void *userdata, const Frame *request,
                       FrameBuilder *reply) {
        static const char prefix[] = "unknown command; known: ";
        _cleanup_free_ char *command = NULL, *argument = NULL, *known = NULL;
        size_t size = sizeof(prefix);
        int r;

        r = wire_control_request_parse(request, &command, &argument, reply);
        if (r != 0)
                return r < 0 ? r : 0;
        if (wire_control_dispatch(table, n, userdata, request, command, argument, reply))
                return 0;

        /* The list is the table's: a command added there is named here too. */
        for (size_t i = 0; i < n; i++)
                size += strlen(table[i].name) + 2;
        known = malloc(size);
        if (!known) {
                wire_reply_init(reply, WIRE_CONTROL_REPLY, ENOMEM, "out of memory");
                return 0;
        }
        strcpy(known, prefix);
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        strcat(known, ", ");
                strcat(known, table[i].name);
        }
        wire_reply_init(reply, WIRE_CONTROL_REPLY, EINVAL, known);
        return 0;
}

int frame_server_listen(FrameServer **ret, sd_event *e, const Config *c, const char *name, FrameHandler handler,
                        FrameAccess access, void *userdata) {
        _cleanup_(frame_server_freep) FrameServer *s = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        if (mkdir(c->runtime_dir, 0755) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Cannot create the runtime folder '%s': %m", c->runtime_dir);
        r = config_socket_path(c, name, &path);
        if (r < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = frame_server_new(&s, e, path, 0666, handler, userdata);
        if (r < 0)
                return log_error_errno(r, "Cannot listen on '%s': %m", path);
        r = frame_server_set_access_from_config(s, c, access);
        if (r < 0)
                return log_error_errno(r, "Cannot look up the access groups: %m");
        log_debug("Listening on '%s'", path);
        *ret = TAKE_PTR(s);
        return 0;
}
