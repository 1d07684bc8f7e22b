/* IoT Edge's workload API for the modules: tokens signed with their keys, which never leave the hub */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/manager.h"
#include "agent/workload.h"
#include "proto/iothub/workload-request.h"
#include "proto/ipc/auth-client.h"
#include "proto/ipc/peer.h"
#include "proto/runtime/log.h"
#include "proto/util/base64.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

#define WORKLOAD_CONNECTION_LIMIT 64
#define WORKLOAD_CONNECTION_TIMEOUT_SEC 10
#define TRUST_BUNDLE_MAX (256u * 1024u)

static void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}

struct WorkloadServer {
        Manager *manager;
        char *path;
        struct MHD_Daemon *daemon;
        HttpEvent *event;
        RateLimit warn_limit;
};

/* A request's body, gathered across MHD's calls; over the limit it is only counted. */
typedef struct Upload {
        char buf[WORKLOAD_BODY_MAX];
        size_t len;
        bool too_large;
} Upload;

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, char *text) {
        struct MHD_Response *response;
        enum MHD_Result ret;

        if (!text)
                return MHD_NO;
        response = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        if (!response) {
                free(text);
                return MHD_NO;
        }
        (void) MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        ret = MHD_queue_response(c, status, response);
        MHD_destroy_response(response);
        return ret;
}

static enum MHD_Result reply_error(WorkloadServer *s, struct MHD_Connection *c, unsigned status, const PeerCred *peer,
                                   const char *message) {
        log_ratelimit_warning(&s->warn_limit, "Workload API: refused %u to pid %d (uid %u): %s", status,
                              peer ? (int) peer->pid : 0, peer ? (unsigned) peer->uid : 0u, message);
        return reply_json(c, status, workload_error_body(message));
}

/* The running module whose process runs as uid: its uid is its alone (module-user.h). */
static Module *module_by_uid(Manager *m, uid_t uid) {
        for (size_t i = 0; i < m->n_modules; i++)
                if (m->modules[i]->pid > 0 && m->modules[i]->uid == uid && m->modules[i]->uid != 0)
                        return m->modules[i];
        return NULL;
}

static enum MHD_Result reply_trust_bundle(WorkloadServer *s, struct MHD_Connection *c, const PeerCred *peer) {
        const char *file = s->manager->config->agent_ca_file;
        _cleanup_free_ char *pem = NULL;
        size_t len = 0;

        if (!file)
                return reply_error(s, c, MHD_HTTP_NOT_FOUND, peer, "no trust bundle: agent.ca_file is not set");
        _cleanup_(fclosep) FILE *f = fopen(file, "re");
        if (f) {
                pem = malloc(TRUST_BUNDLE_MAX + 1);
                len = pem ? fread(pem, 1, TRUST_BUNDLE_MAX + 1, f) : 0;
        }
        if (!pem || len == 0 || len > TRUST_BUNDLE_MAX || ferror(f)) {
                log_warning("Workload API: cannot read the trust bundle '%s'", file);
                return reply_json(c, MHD_HTTP_INTERNAL_SERVER_ERROR, workload_error_body("cannot read the trust bundle"));
        }
        pem[len] = '\0';
        json_auto_t *o = json_pack("{s:s}", "certificate", pem);
        return reply_json(c, MHD_HTTP_OK, o ? json_dumps(o, JSON_COMPACT) : NULL);
}

static enum MHD_Result reply_sign(WorkloadServer *s, struct MHD_Connection *c, const PeerCred *peer,
                                  const WorkloadRequest *r) {
        Manager *m = s->manager;
        _cleanup_(auth_key_freep) char *key_b64 = NULL;
        _cleanup_free_ char *digest = NULL, *why = NULL;
        _cleanup_free_ uint8_t *key = NULL;
        uint8_t mac[EVP_MAX_MD_SIZE];
        unsigned mac_len = 0;
        size_t key_len = 0;

        Module *mod = module_by_uid(m, peer->uid);
        if (!mod)
                return reply_error(s, c, MHD_HTTP_FORBIDDEN, peer, "the caller is not a module this hub runs");
        if (strcmp(mod->name, r->module_id) != 0) {
                (void) asprintf(&why, "module '%s' may sign only for itself, not for '%s'", mod->name, r->module_id);
                return reply_error(s, c, MHD_HTTP_FORBIDDEN, peer, why ?: "a module may sign only for itself");
        }
        if (strcmp(mod->generation_id, r->generation_id) != 0)
                return reply_error(s, c, MHD_HTTP_FORBIDDEN, peer, "not the module's current generation id");

        int k = manager_fetch_module_key(m, mod->identity, &key_b64);
        if (k < 0)
                return reply_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, peer, "the module's key is not available");
        k = base64_decode(key_b64, strlen(key_b64), &key, &key_len);
        if (k < 0 || key_len == 0 || key_len > INT32_MAX)
                return reply_error(s, c, MHD_HTTP_SERVICE_UNAVAILABLE, peer, "the module's key is not usable");
        bool ok = HMAC(EVP_sha256(), key, (int) key_len, r->data, r->data_len, mac, &mac_len) != NULL;
        OPENSSL_cleanse(key, key_len);
        if (!ok || base64_encode(mac, mac_len, &digest) < 0)
                return reply_json(c, MHD_HTTP_INTERNAL_SERVER_ERROR, workload_error_body("signing failed"));
        log_debug("Workload API: signed %zu bytes for module '%s'", r->data_len, mod->name);
        json_auto_t *o = json_pack("{s:s}", "digest", digest);
        return reply_json(c, MHD_HTTP_OK, o ? json_dumps(o, JSON_COMPACT) : NULL);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
        WorkloadServer *s = cls;
        Upload *u = *con_cls;
        WorkloadRequest r;
        const char *error = NULL;
        PeerCred peer;

        if (!u) {
                u = calloc(1, sizeof(*u));
                if (!u)
                        return MHD_NO;
                *con_cls = u;
                return MHD_YES;
        }
        if (*upload_data_size > 0) {
                if (u->len + *upload_data_size > sizeof(u->buf))
                        u->too_large = true;
                else {
                        memcpy(u->buf + u->len, upload_data, *upload_data_size);
                        u->len += *upload_data_size;
                }
                *upload_data_size = 0;
                return MHD_YES;
        }

        const union MHD_ConnectionInfo *info = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!info || peer_cred_get(info->connect_fd, &peer) < 0)
                return reply_error(s, c, MHD_HTTP_FORBIDDEN, NULL, "cannot tell who is calling");
        if (u->too_large)
                return reply_error(s, c, MHD_HTTP_CONTENT_TOO_LARGE, &peer, "the body is too large");

        const char *api = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "api-version");
        int k = workload_request_parse(method, url, api, u->buf, u->len, &r, &error);
        if (k < 0)
                return MHD_NO;
        if (k > 0)
                return reply_error(s, c, (unsigned) k, &peer, error);
        enum MHD_Result ret = r.kind == WORKLOAD_TRUST_BUNDLE ? reply_trust_bundle(s, c, &peer) : reply_sign(s, c, &peer, &r);
        workload_request_deinit(&r);
        return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode code) {
        Upload *u = *con_cls;

        if (u) {
                explicit_bzero(u, sizeof(*u));
                free(u);
        }
        *con_cls = NULL;
}

static int workload_listen(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) unlink(path);
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        /* Every module must reach it; SO_PEERCRED, not the file mode, says who may have what. */
        if (chmod(path, 0666) < 0 || listen(fd, 16) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int workload_server_new(WorkloadServer **ret, Manager *m, const char *path) {
        _cleanup_(workload_server_freep) WorkloadServer *s = calloc(1, sizeof(*s));
        _cleanup_close_ int fd = -EBADF;
        int r;

        if (!s)
                return -ENOMEM;
        s->manager = m;
        s->warn_limit = RATELIMIT_INIT(1000000u, 5);
        s->path = strdup(path);
        if (!s->path)
                return -ENOMEM;
        r = workload_listen(path, &fd);
        if (r < 0)
                return r;
        s->daemon = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL, on_request, s,
                                     MHD_OPTION_LISTEN_SOCKET, fd,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned) WORKLOAD_CONNECTION_LIMIT,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) WORKLOAD_CONNECTION_TIMEOUT_SEC,
                                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                                     MHD_OPTION_END);
        if (!s->daemon)
                return -ENOMEM;
        fd = -EBADF; /* MHD closes it in MHD_stop_daemon() */
        r = http_event_attach(&s->event, m->event, s->daemon, "workload-api");
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

WorkloadServer *workload_server_free(WorkloadServer *s) {
        if (!s)
                return NULL;
        s->event = http_event_free(s->event);
        if (s->daemon) {
                MHD_stop_daemon(s->daemon);
                (void) unlink(s->path);
        }
        free(s->path);
        free(s);
        return NULL;
}
