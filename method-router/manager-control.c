/* method-router.sock: status, and method calls for hubctl */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "method-router/manager.h"
#include "proto/iothub/iot-identity.h"
#include "proto/iothub/method-request.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "proto/util/number.h"

/*
 * The control socket answers each request at once (proto/ipc/server.h), and a
 * method call takes up to minutes: "invoke" starts a call and returns its
 * id, "result" returns {"done": false} until it ended. hubctl polls. An
 * ended call's result is kept until fetched, or RESULT_KEEP_USEC.
 */
#define RESULT_KEEP_USEC (60u * 1000u * 1000u)
#define CONTROL_CALLS_MAX 64u

typedef struct ControlCall {
        Manager *manager;
        struct ControlCall *next;
        uint64_t id;
        Call *call;          /* while running */
        json_t *result;      /* once ended */
        uint64_t ended_usec;
} ControlCall;

static void control_call_free(ControlCall *cc) {
        call_cancel(cc->call);
        json_decref(cc->result);
        free(cc);
}

static void control_call_unlink(Manager *m, ControlCall *cc) {
        for (ControlCall **p = &m->control_calls; *p; p = &(*p)->next)
                if (*p == cc) {
                        *p = cc->next;
                        return;
                }
}

void manager_control_free_all(Manager *m) {
        while (m->control_calls) {
                ControlCall *cc = m->control_calls;
                m->control_calls = cc->next;
                control_call_free(cc);
        }
}

/* Forgets results nobody fetched. */
static size_t control_calls_expire(Manager *m) {
        uint64_t now = now_usec();
        ControlCall **p = &m->control_calls;
        size_t n = 0;

        while (*p) {
                ControlCall *cc = *p;
                if (cc->result && now > cc->ended_usec + RESULT_KEEP_USEC) {
                        *p = cc->next;
                        control_call_free(cc);
                        continue;
                }
                n++;
                p = &cc->next;
        }
        return n;
}

/* {"done":true,"httpStatus":n, then "status","payload" or "errorCode","message"}. */
static json_t *result_json(int http_status, const CallResult *r, const char *code, const char *text) {
        json_t *payload;

        if (r && r->outcome == CALL_ANSWERED) {
                payload = r->len > 0 ? json_loadb(r->payload, r->len, JSON_DECODE_ANY, NULL) : json_null();
                return json_pack("{s:b, s:i, s:i, s:o?}", "done", true, "httpStatus", http_status, "status",
                                 r->device_status, "payload", payload);
        }
        return json_pack("{s:b, s:i, s:s, s:s}", "done", true, "httpStatus", http_status, "errorCode",
                         code ?: "ServerError", "message", text ?: "failed");
}

static void on_call_done(const CallResult *result, void *userdata) {
        ControlCall *cc = userdata;

        cc->call = NULL;
        cc->ended_usec = now_usec();
        cc->result = result_json(result->http_status, result, result->error_code, result->error_text);
}

/* An immediate error of manager_invoke(): its body is our own method_error_format() text. */
static json_t *result_from_body(int http_status, const char *body) {
        json_auto_t *j = body ? json_loads(body, 0, NULL) : NULL;
        const char *code = NULL, *text = NULL;

        if (j)
                (void) json_unpack(j, "{s:s, s:s}", "errorCode", &code, "message", &text);
        return result_json(http_status, NULL, code, text);
}

static json_t *control_invoke(void *userdata, const Frame *req, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        _cleanup_(method_request_deinit) MethodRequest mr = METHOD_REQUEST_NULL;
        _cleanup_free_ char *target = NULL, *d = NULL, *mod = NULL, *body = NULL;
        ControlCall *cc;
        int r, status;

        if (frame_get_string(req, WIRE_IDENTITY, &target) < 0 || iot_identity_split(target, &d, &mod) < 0) {
                *ret_error = "invoke needs the target as IDENTITY: {deviceId} or {deviceId}/{moduleId}";
                return NULL;
        }
        if (!argument) {
                *ret_error = "invoke needs the method request body as ARGUMENT";
                return NULL;
        }
        r = method_request_parse(argument, strlen(argument), &mr, ret_error);
        if (r < 0)
                return NULL;
        if (control_calls_expire(m) >= CONTROL_CALLS_MAX) {
                *ret_error = "too many method calls from hubctl at once";
                return NULL;
        }

        cc = calloc(1, sizeof(*cc));
        if (!cc)
                return NULL;
        cc->manager = m;
        cc->id = ++m->next_control_id;
        r = manager_invoke(m, "hubctl", target, mr.name, mr.payload, mr.payload_len, mr.response_timeout_sec,
                           mr.connect_timeout_sec, on_call_done, cc, &cc->call, &status, &body);
        if (r > 0) {
                cc->result = result_from_body(status, body);
                cc->ended_usec = now_usec();
        }
        cc->next = m->control_calls;
        m->control_calls = cc;
        return json_pack("{s:I}", "call", (json_int_t) cc->id);
}

static json_t *control_result(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        uint64_t id;

        if (!argument || parse_u64(argument, strlen(argument), &id) < 0) {
                *ret_error = "result needs the call id as ARGUMENT";
                return NULL;
        }
        for (ControlCall *cc = m->control_calls; cc; cc = cc->next) {
                if (cc->id != id)
                        continue;
                if (!cc->result)
                        return json_pack("{s:b}", "done", false);
                json_t *result = json_incref(cc->result);
                control_call_unlink(m, cc);
                control_call_free(cc);
                return result;
        }
        *ret_error = "no such call (its result was fetched already, or expired)";
        return NULL;
}

static json_t *control_status(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        const CallStats *s = &m->calls.stats;

        return json_pack("{s:b, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "bus", bus_connected(m->bus), "https_port",
                         (int) m->config->methods_port, "calls_in_flight", (json_int_t) m->calls.n_calls, "started",
                         (json_int_t) s->started, "answered", (json_int_t) s->answered, "not_connected",
                         (json_int_t) s->not_connected, "timed_out", (json_int_t) s->timed_out, "bad_answers",
                         (json_int_t) s->bad_answers, "bus_down", (json_int_t) s->bus_down, "stray_answers",
                         (json_int_t) s->stray_answers);
}

/* A refused invocation or result is the caller's mistake: EINVAL, as hubctl reports it. */
static const WireControlCommand control_commands[] = {
        { "status", control_status },
        { "invoke", control_invoke, EINVAL },
        { "result", control_result, EINVAL },
};

/* "result" too: it reads what an invocation answered, which only its administrator should see. */
unsigned manager_request_access(void *userdata, const Frame *request) {
        static const char *const admin[] = { "invoke", "result", NULL };
        return wire_control_access(request, admin);
}

int manager_handle_request(void *userdata, const Frame *request, FrameBuilder *reply) {
        Manager *m = userdata;

        if (request->type != WIRE_CONTROL_REQUEST) {
                wire_reply_init(reply, request->type + 1, EOPNOTSUPP, "method-router answers control requests only");
                return 0;
        }
        return wire_control_serve(control_commands, ELEMENTSOF(control_commands), m, request, reply);
}
