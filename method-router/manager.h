/* The method-router daemon: its loop, bus link, HTTPS listener and control socket */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "method-router/call.h"
#include "proto/ipc/bus.h"
#include "proto/ipc/client.h"
#include "proto/ipc/frame.h"
#include "proto/ipc/server.h"
#include "proto/runtime/config.h"
#include "proto/runtime/daemon-event.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

/*
 * Direct methods between local clients, and from the cloud to them, with or
 * without the uplink. Three ways in, one way out (call.h):
 *   HTTPS   POST /twins/{d}[/modules/{m}]/methods (http-server.h), as the
 *           Azure module SDKs call the gateway;
 *   MQTT    "$iothub/methods/invoke/{d}[/{m}]/?$rid=R" from any local client,
 *           answered on "$iothub/methods/invoke/res/{status}/?$rid=R";
 *   cloud   "$edgehub/cloud/methods/POST/{name}/?$rid=R" for client X (via
 *           hub-store's upstream link of X), answered upstream as X;
 * plus `hubctl methods invoke` on method-router.sock.
 */
typedef struct HttpServer HttpServer;

typedef struct Manager {
        sd_event *event;
        DaemonSignals signals;
        Config *config;
        Bus *bus;
        FrameServer *control;
        FrameClient auth_cache; /* WIRE_AUTH_* and WIRE_KEY_* (is the target in scope?) */
        HttpServer *http;
        CallTable calls;
        struct ControlCall *control_calls; /* hubctl invocations, until their result is fetched */
        uint64_t next_control_id;
        RateLimit bad_message_log; /* malformed method messages on the bus */
} Manager;

/* How long the auth-cache may take per request; the loop waits for it. */
#define MANAGER_AUTH_TIMEOUT_USEC (1000u * 1000u)

int manager_new(Manager **ret, Config **config);
Manager *manager_free(Manager *m);
/* Binds the control socket and the HTTPS listener; logs its own errors. */
int manager_listen(Manager *m);
/* Connects the bus. */
int manager_start(Manager *m);

/*
 * What the three front ends share. A local invocation by caller (for the log)
 * of method name on target: checks the target is in the device scope, then
 * calls it. Returns 1 when it is answered at once (an error) with
 * *ret_status and *ret_body, or 0 when done will be called (never from
 * inside this call); *ret_call (may be NULL) is then for call_cancel().
 */
int manager_invoke(Manager *m, const char *caller, const char *target, const char *name, const char *payload,
                   size_t len, unsigned response_timeout_sec, unsigned connect_timeout_sec, CallDone done,
                   void *userdata, Call **ret_call, int *ret_status, char **ret_body);
/* An error body (method_error_format); NULL only when out of memory. */
char *manager_error_body(const char *code, const char *text);
/*
 * Who may call: modules of this edge device, as in IoT Edge (whose method
 * API takes module identities only); a leaf device would otherwise reach
 * every other device in scope with no more than its own key. 0, or 403
 * with *ret_body.
 */
int manager_caller_check(Manager *m, const char *caller, char **ret_body);
/* The HTTP status and JSON body ({"status","payload"} or an error) of a call's result. */
int manager_result_reply(const CallResult *r, char **ret_body);

/* Requests on the bus (manager-bus.c). */
void manager_on_bus_message(Bus *b, const BusMessage *msg, void *userdata);

/* method-router.sock (manager-control.c). */
int manager_handle_request(void *userdata, const Frame *request, FrameBuilder *reply);
/* The PEER_* rights a request needs (proto/ipc/server.h FrameAccess). */
unsigned manager_request_access(void *userdata, const Frame *request);
void manager_control_free_all(Manager *m);

DEFINE_CLEANUP_FUNC(Manager, manager_free);
