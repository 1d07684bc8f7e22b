/* Direct method calls in flight: to one local device or module over the bus, until its answer or a deadline */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "method-router/call.h"
#include "proto/iothub/method-request.h"
#include "proto/ipc/frame.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

/* The plugin's PUBACK comes within milliseconds; this only bounds a call whose PUBACK never comes. */
#define PUBACK_GRACE_USEC (2u * 1000u * 1000u)
#define USEC_PER_SEC 1000000u

typedef enum CallState {
        CALL_SENDING,      /* published, PUBACK not seen yet */
        CALL_WAIT_CONNECT, /* target not connected; waiting for it until the connect deadline */
        CALL_DELIVERED,    /* the target has it; waiting for its answer */
} CallState;

struct Call {
        CallTable *table;
        Call *prev, *next;
        char *target;
        char *name;
        char *rid;
        char *topic;
        char *payload;
        size_t len;
        unsigned response_timeout_sec;
        uint64_t connect_deadline_usec; /* CLOCK_MONOTONIC; 0: don't wait for the target */
        CallState state;
        sd_event_source *timer;
        CallDone done;
        void (*destroy)(void *userdata);
        void *userdata;
};

static const struct {
        int http_status;
        const char *code;
} outcomes[_CALL_OUTCOME_MAX] = {
        [CALL_ANSWERED] = { 200, NULL },
        [CALL_NOT_CONNECTED] = { 404, "DeviceNotOnline" },
        [CALL_TIMED_OUT] = { 504, "GatewayTimeout" },
        [CALL_BAD_ANSWER] = { 502, "BadDeviceResponse" },
        [CALL_BUS_DOWN] = { 503, "ServiceUnavailable" },
};

const char *call_outcome_code(CallOutcome o) {
        return o >= 0 && o < _CALL_OUTCOME_MAX ? outcomes[o].code : NULL;
}

int call_table_init(CallTable *t, sd_event *e, Bus *bus) {
        *t = CALL_TABLE_NULL;
        t->event = e;
        t->bus = bus;
        bus_request_ids_init(&t->rids, "");
        return 0;
}

/* What a call owns; one that call_start() has not linked yet needs only this. */
static Call *call_destroy(Call *c) {
        c->timer = sd_event_source_disable_unref(c->timer);
        free(c->target);
        free(c->name);
        free(c->rid);
        free(c->topic);
        free(c->payload);
        free(c);
        return NULL;
}

DEFINE_CLEANUP_FUNC(Call, call_destroy);

static void call_free(Call *c) {
        CallTable *t = c->table;

        if (c->prev)
                c->prev->next = c->next;
        else
                t->calls = c->next;
        if (c->next)
                c->next->prev = c->prev;
        t->n_calls--;
        if (c->done && c->destroy)
                c->destroy(c->userdata);
        /* A PUBACK still to come must not reach a freed call. */
        bus_forget(t->bus, c);
        call_destroy(c);
}

void call_table_deinit(CallTable *t) {
        while (t->calls)
                call_free(t->calls);
}

void call_set_destroy(Call *c, void (*destroy)(void *userdata)) {
        c->destroy = destroy;
}

void call_cancel(Call *c) {
        if (c)
                call_free(c);
}

static void call_finish(Call *c, CallOutcome o, int device_status, const void *payload, size_t len) {
        _cleanup_free_ char *text = NULL;
        CallStats *s = &c->table->stats;
        CallDone done = c->done;
        void *userdata = c->userdata;

        switch (o) {
        case CALL_ANSWERED:
                s->answered++;
                break;
        case CALL_NOT_CONNECTED:
                s->not_connected++;
                (void) asprintf(&text, "'%s' is not connected to the gateway", c->target);
                break;
        case CALL_TIMED_OUT:
                s->timed_out++;
                (void) asprintf(&text, "'%s' did not answer method '%s' within %u s", c->target, c->name,
                                c->response_timeout_sec);
                break;
        case CALL_BAD_ANSWER:
                s->bad_answers++;
                (void) asprintf(&text, "'%s' answered method '%s' with a payload that is not JSON", c->target,
                                c->name);
                break;
        case CALL_BUS_DOWN:
                s->bus_down++;
                (void) asprintf(&text, "the gateway's local broker is not reachable; '%s' was not called", c->target);
                break;
        default:
                break;
        }
        log_debug("Method '%s' on '%s' (rid %s): %s", c->name, c->target, c->rid,
                  o == CALL_ANSWERED ? "answered" : outcomes[o].code);

        CallResult result = {
                .outcome = o,
                .http_status = outcomes[o].http_status,
                .error_code = outcomes[o].code,
                .error_text = o == CALL_ANSWERED ? NULL : (text ?: "failed"),
                .device_status = device_status,
                .payload = payload,
                .len = len,
        };
        /* Unlinked first: done may start other calls. */
        c->done = NULL;
        done(&result, userdata);
        call_free(c);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Call *c = userdata;

        call_finish(c, c->state == CALL_WAIT_CONNECT ? CALL_NOT_CONNECTED : CALL_TIMED_OUT, 0, NULL, 0);
        return 0;
}

static int call_arm(Call *c, uint64_t at_usec) {
        int r;

        if (!c->timer) {
                r = sd_event_add_time(c->table->event, &c->timer, CLOCK_MONOTONIC, at_usec, 1000, on_timer, c);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(c->timer, "method-call");
                return 0;
        }
        r = sd_event_source_set_time(c->timer, at_usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
        return r;
}

static void on_published(Bus *b, int reason, void *userdata) {
        Call *c = userdata;
        uint64_t now = now_usec();

        if (reason < 0) {
                call_finish(c, CALL_BUS_DOWN, 0, NULL, 0);
                return;
        }
        if (reason == BUS_REASON_NOT_AUTHORIZED) {
                if (c->connect_deadline_usec == 0 || now >= c->connect_deadline_usec) {
                        call_finish(c, CALL_NOT_CONNECTED, 0, NULL, 0);
                        return;
                }
                c->state = CALL_WAIT_CONNECT;
                if (call_arm(c, c->connect_deadline_usec) < 0)
                        call_finish(c, CALL_NOT_CONNECTED, 0, NULL, 0);
                return;
        }
        /* An answer may have come before the PUBACK; then c is gone and bus_forget() kept us out. */
        c->state = CALL_DELIVERED;
        if (call_arm(c, now + (uint64_t) c->response_timeout_sec * USEC_PER_SEC) < 0)
                call_finish(c, CALL_TIMED_OUT, 0, NULL, 0);
}

static int call_send(Call *c) {
        c->state = CALL_SENDING;
        return bus_publish(c->table->bus, BUS_TOPIC_DELIVER, c->payload, c->len, c->target, c->topic, on_published,
                           c);
}

int call_start(CallTable *t, const char *target, const char *name, const char *payload, size_t len,
               unsigned response_timeout_sec, unsigned connect_timeout_sec, CallDone done, void *userdata,
               Call **ret) {
        _cleanup_(call_destroyp) Call *c = NULL;
        uint64_t now = now_usec();
        int r;

        if (!bus_connected(t->bus))
                return -ENOTCONN;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (Call){
                .table = t,
                .response_timeout_sec = response_timeout_sec,
                .connect_deadline_usec = connect_timeout_sec ? now + (uint64_t) connect_timeout_sec * USEC_PER_SEC : 0,
                .done = done,
                .userdata = userdata,
        };
        c->target = strdup(target);
        c->name = strdup(name);
        c->rid = bus_request_id_next(&t->rids);
        c->payload = malloc(len + 1);
        if (!c->target || !c->name || !c->rid || !c->payload)
                return -ENOMEM;
        memcpy(c->payload, payload, len);
        c->payload[len] = '\0';
        c->len = len;
        r = method_topic_format_post(name, c->rid, &c->topic);
        if (r < 0)
                return r;

        /* The whole budget plus a grace for the PUBACK; re-armed once the PUBACK says where we are. */
        r = call_arm(c, now + ((uint64_t) connect_timeout_sec + response_timeout_sec) * USEC_PER_SEC +
                                PUBACK_GRACE_USEC);
        if (r < 0)
                return r;

        /* Linked before the publish: its callback may run only from the loop, but keep one shape. */
        c->next = t->calls;
        if (t->calls)
                t->calls->prev = c;
        t->calls = c;
        t->n_calls++;
        Call *started = TAKE_PTR(c);

        r = call_send(started);
        if (r < 0) {
                started->done = NULL;
                call_free(started);
                return r;
        }
        t->stats.started++;
        log_debug("Calling method '%s' on '%s' (rid %s)", name, target, started->rid);
        if (ret)
                *ret = started;
        return 0;
}

void call_table_on_answer(CallTable *t, const char *client, int status, const char *rid, const void *payload,
                          size_t len) {
        for (Call *c = t->calls; c; c = c->next) {
                if (strcmp(c->rid, rid) != 0)
                        continue;
                if (!client || strcmp(c->target, client) != 0 || c->state == CALL_WAIT_CONNECT)
                        break;
                if (method_payload_check(payload, len) < 0)
                        call_finish(c, CALL_BAD_ANSWER, 0, NULL, 0);
                else
                        call_finish(c, CALL_ANSWERED, status, payload, len);
                return;
        }
        t->stats.stray_answers++;
        log_debug("Ignoring a method answer from '%s' to rid '%s': no such call for it", client ?: "?", rid);
}

/* Whether a subscription under $iothub/ takes method calls. */
static bool filter_takes_methods(const char *filter) {
        return strncmp(filter, "$iothub/methods/POST/", 21) == 0 || strcmp(filter, "$iothub/methods/#") == 0 ||
               strcmp(filter, "$iothub/#") == 0 || strcmp(filter, "$iothub/methods/+/#") == 0;
}

void call_table_on_subscribe(CallTable *t, const char *client, const char *filter) {
        Call *next;

        if (!client || !filter_takes_methods(filter))
                return;
        for (Call *c = t->calls; c; c = next) {
                next = c->next;
                if (c->state != CALL_WAIT_CONNECT || strcmp(c->target, client) != 0)
                        continue;
                log_debug("'%s' is back: calling method '%s' again", client, c->name);
                if (call_send(c) < 0)
                        call_finish(c, CALL_BUS_DOWN, 0, NULL, 0);
        }
}
