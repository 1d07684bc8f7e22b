/* The method-router daemon: its loop, bus link, HTTPS listener and control socket */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "method-router/http-server.h"
#include "method-router/manager.h"
#include "proto/iothub/iot-identity.h"
#include "proto/iothub/method-request.h"
#include "proto/ipc/auth-client.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

#define BUS_NAME "method-router"

static void on_bus_connected(Bus *b, void *userdata) {
        log_info("Connected to the local broker");
}

static void on_bus_disconnected(Bus *b, void *userdata) {
        log_notice("Lost the local broker; method calls wait for it");
}

int manager_new(Manager **ret, Config **config) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_free_ char *auth_path = NULL, *broker_path = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->auth_cache = FRAME_CLIENT_NULL;
        m->bad_message_log = RATELIMIT_INIT(10u * 1000u * 1000u, 10u);
        m->config = TAKE_PTR(*config);

        r = daemon_event_new(&m->event, &m->signals, NULL, m);
        if (r < 0)
                return r;

        r = config_socket_path(m->config, SOCKET_AUTH_CACHE, &auth_path);
        if (r < 0)
                return r;
        r = frame_client_init(&m->auth_cache, auth_path);
        if (r < 0)
                return r;

        r = config_socket_path(m->config, SOCKET_BROKER, &broker_path);
        if (r < 0)
                return r;
        static const BusHandlers handlers = {
                .message = manager_on_bus_message,
                .connected = on_bus_connected,
                .disconnected = on_bus_disconnected,
        };
        r = bus_new(&m->bus, m->event, broker_path, BUS_NAME, &handlers, m);
        if (r < 0)
                return r;
        r = call_table_init(&m->calls, m->event, m->bus);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        /* HTTP requests hold calls: they go first, then the calls, then the bus the calls use. */
        m->http = http_server_free(m->http);
        manager_control_free_all(m);
        call_table_deinit(&m->calls);
        m->bus = bus_free(m->bus);
        m->control = frame_server_free(m->control);
        frame_client_deinit(&m->auth_cache);
        m->event = daemon_event_free(m->event, &m->signals);
        config_free(m->config);
        free(m);
        return NULL;
}

int manager_listen(Manager *m) {
        int r;

        /* Anyone may connect; invoking a method is an administrator's, status the read group's. */
        r = frame_server_listen(&m->control, m->event, m->config, SOCKET_METHOD_ROUTER, manager_handle_request,
                                manager_request_access, m);
        if (r < 0)
                return r;

        if (m->config->methods_port == 0) {
                log_info("methods.port is 0: no HTTPS listener, direct methods over MQTT only");
                return 0;
        }
        /* http_server_new() logs what went wrong (file, address). */
        return http_server_new(&m->http, m);
}

int manager_start(Manager *m) {
        static const char *const filters[] = {
                BUS_PREFIX_DEVICE "methods/res/#",
                BUS_PREFIX_DEVICE "methods/invoke/#",
                BUS_PREFIX_CLOUD "methods/POST/#",
                BUS_TOPIC_SUBSCRIBE,
        };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(filters); i++) {
                r = bus_add_subscription(m->bus, filters[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to subscribe to '%s': %m", filters[i]);
        }
        r = bus_start(m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to start the bus link: %m");
        return 0;
}

char *manager_error_body(const char *code, const char *text) {
        char *body = NULL;

        if (method_error_format(code, text, &body) < 0)
                return NULL;
        return body;
}

int manager_result_reply(const CallResult *r, char **ret_body) {
        if (r->outcome == CALL_ANSWERED) {
                /* call.c checked the payload is JSON. */
                if (method_response_format(r->device_status, r->payload, r->len, ret_body) < 0)
                        *ret_body = NULL;
                return 200;
        }
        *ret_body = manager_error_body(r->error_code, r->error_text);
        return r->http_status;
}

int manager_caller_check(Manager *m, const char *caller, char **ret_body) {
        _cleanup_free_ char *d = NULL, *mod = NULL, *text = NULL;

        if (iot_identity_split(caller, &d, &mod) >= 0 && mod && strcmp(d, m->config->edge_device_id) == 0)
                return 0;
        if (asprintf(&text, "only modules of edge device '%s' may invoke direct methods, not '%s'",
                     m->config->edge_device_id, caller) < 0)
                text = NULL;
        *ret_body = manager_error_body("IotHubUnauthorizedAccess", text ?: "not allowed");
        return 403;
}

/* Whether target is an enabled identity of the scope: 0, or 404/503 with *ret_body. */
static int target_check(Manager *m, const char *target, char **ret_body) {
        _cleanup_free_ char *text = NULL;
        int r, status;

        r = auth_client_identity(&m->auth_cache, MANAGER_AUTH_TIMEOUT_USEC, target, &status);
        if (r < 0) {
                log_warning_errno(r, "Cannot ask auth-cache about '%s': %m", target);
                *ret_body = manager_error_body("ServiceUnavailable", "the gateway's auth-cache is not reachable");
                return 503;
        }
        r = status;
        if (r == 0)
                return 0;
        if (r == -EACCES)
                (void) asprintf(&text, "'%s' is disabled", target);
        else
                (void) asprintf(&text, "'%s' is not a device or module in this gateway's scope", target);
        *ret_body = manager_error_body("DeviceNotFound", text ?: "unknown target");
        return 404;
}

int manager_invoke(Manager *m, const char *caller, const char *target, const char *name, const char *payload,
                   size_t len, unsigned response_timeout_sec, unsigned connect_timeout_sec, CallDone done,
                   void *userdata, Call **ret_call, int *ret_status, char **ret_body) {
        int r, status;

        status = target_check(m, target, ret_body);
        if (status != 0) {
                *ret_status = status;
                return 1;
        }
        r = call_start(&m->calls, target, name, payload, len, response_timeout_sec, connect_timeout_sec, done,
                       userdata, ret_call);
        if (r == -ENOTCONN) {
                m->calls.stats.bus_down++;
                *ret_status = 503;
                *ret_body = manager_error_body("ServiceUnavailable", "the gateway's local broker is not reachable");
                return 1;
        }
        if (r < 0) {
                log_warning_errno(r, "Cannot call method '%s' on '%s' for '%s': %m", name, target, caller);
                *ret_status = 500;
                *ret_body = manager_error_body("ServerError", "the call could not be started");
                return 1;
        }
        log_debug("'%s' calls method '%s' on '%s'", caller, name, target);
        return 0;
}
