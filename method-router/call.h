/* Direct method calls in flight: to one local device or module over the bus, until its answer or a deadline */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "proto/ipc/bus.h"

/*
 * A call publishes "$iothub/methods/POST/{name}/?$rid={local rid}" on
 * $edgehub/deliver to the target. The plugin's PUBACK says whether the
 * target is connected (0x87: not). The answer comes back from the plugin as
 * "$edgehub/device/methods/res/{status}/?$rid={local rid}" with client =
 * the target; an answer from anyone else, or to a rid we did not send, is
 * ignored. Local rids are "{random per process}-{counter}", so an answer to
 * a call made before a restart matches nothing.
 *
 * connect_timeout_sec > 0 (IoT Hub's connectTimeoutInSeconds): a target that
 * is not connected is called again when it subscribes to method calls
 * ($edgehub/subscribe), until that many seconds passed; then 404.
 *
 * Each call ends exactly once, through its done callback, unless the
 * caller cancels it first.
 */
typedef struct Call Call;

typedef enum CallOutcome {
        CALL_ANSWERED,       /* 200: device_status + payload */
        CALL_NOT_CONNECTED,  /* 404 DeviceNotOnline */
        CALL_TIMED_OUT,      /* 504 GatewayTimeout */
        CALL_BAD_ANSWER,     /* 502 BadDeviceResponse: the payload is not JSON */
        CALL_BUS_DOWN,       /* 503 ServiceUnavailable: the local broker is not reachable */
        _CALL_OUTCOME_MAX,
} CallOutcome;

typedef struct CallResult {
        CallOutcome outcome;
        int http_status;        /* 200, 404, 504, 502, 503 */
        const char *error_code; /* IoT Hub's name for it (NULL when answered) */
        const char *error_text; /* a sentence naming the target (NULL when answered) */
        int device_status;      /* CALL_ANSWERED only */
        const void *payload;    /* CALL_ANSWERED only: JSON text, or empty */
        size_t len;
} CallResult;

typedef void (*CallDone)(const CallResult *result, void *userdata);

typedef struct CallStats {
        uint64_t started;
        uint64_t answered;
        uint64_t not_connected;
        uint64_t timed_out;
        uint64_t bad_answers;
        uint64_t bus_down;
        uint64_t stray_answers; /* answers that matched no call */
} CallStats;

typedef struct CallTable {
        sd_event *event;
        Bus *bus;
        Call *calls;        /* a list; a few hundred at most in practice */
        size_t n_calls;
        BusRequestIds rids;
        CallStats stats;
} CallTable;

#define CALL_TABLE_NULL ((CallTable){})

int call_table_init(CallTable *t, sd_event *e, Bus *bus);
/* Ends every call silently (the process is stopping). */
void call_table_deinit(CallTable *t);

/*
 * Starts a call of method name with payload (JSON text) on target ("d" or
 * "d/m"). -ENOTCONN when the bus is down (nothing started: the caller answers
 * 503 itself); -EINVAL for a name or target that cannot be sent.
 * *ret (may be NULL) is for call_cancel().
 */
int call_start(CallTable *t, const char *target, const char *name, const char *payload, size_t len,
               unsigned response_timeout_sec, unsigned connect_timeout_sec, CallDone done, void *userdata,
               Call **ret);
/* The caller went away: the call ends without calling done. */
void call_cancel(Call *c);
/* destroy(userdata) runs when the call ends without done (cancelled, or the table goes away). */
void call_set_destroy(Call *c, void (*destroy)(void *userdata));

/* "$edgehub/device/methods/res/{status}/?$rid=R" from client. */
void call_table_on_answer(CallTable *t, const char *client, int status, const char *rid, const void *payload,
                          size_t len);
/* client subscribed to filter under $iothub/ ($edgehub/subscribe). */
void call_table_on_subscribe(CallTable *t, const char *client, const char *filter);

/* The HTTP status, IoT Hub error code and text of an outcome that is not CALL_ANSWERED. */
const char *call_outcome_code(CallOutcome o);
