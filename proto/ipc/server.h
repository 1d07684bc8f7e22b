/* A Unix-socket request/reply server on sd-event */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "proto/ipc/frame.h"
#include "proto/ipc/peer.h"
#include "proto/util/cleanup.h"

/*
 * Accepts connections on path, reads frames without blocking, calls the
 * handler once per request and writes its reply. A peer that sends a
 * malformed or oversized frame is answered with nothing and disconnected
 * (logged at warning, rate-limited); everyone else keeps being served.
 */
typedef struct FrameServer FrameServer;

/*
 * The handler starts its reply with wire_reply_init() (or frame_builder_init())
 * and adds fields; the server finishes and sends it. Returning <0 closes the
 * peer without a reply: only for requests that make no sense at all.
 */
typedef int (*FrameHandler)(void *userdata, const Frame *request, FrameBuilder *reply);

int frame_server_new(FrameServer **ret, sd_event *e, const char *path, mode_t mode,
                     FrameHandler handler, void *userdata);
FrameServer *frame_server_free(FrameServer *s);

/*
 * Which peers may send a request: the PEER_* rights (proto/ipc/peer.h) any one
 * of which lets it through. The server records each peer's SO_PEERCRED when
 * it connects; a request the peer has no right to is answered with the
 * request's reply type (type + 1), status EACCES and WIRE_ERROR
 * "permission denied: ...", the handler never sees it, and the peer stays
 * connected. Without an access function every peer may send anything (tests).
 */
typedef unsigned (*FrameAccess)(void *userdata, const Frame *request);
void frame_server_set_access(FrameServer *s, const AccessPolicy *policy, FrameAccess access);
/* The same with access_policy_from_config(c): a group that does not exist is logged, not fatal. */
int frame_server_set_access_from_config(FrameServer *s, const Config *c, FrameAccess access);
/* For control sockets: PEER_ADMIN for a WIRE_CONTROL_REQUEST whose command is in admin (NULL-terminated), else PEER_READ. */
unsigned wire_control_access(const Frame *request, const char *const *admin);

/*
 * A daemon's socket, the one way every daemon opens it: creates the runtime
 * folder, listens on config_socket_path(c, name) with mode 0666 (anyone may
 * connect; access decides what each peer may send) and sets the access
 * groups. Logs what went wrong.
 */
int frame_server_listen(FrameServer **ret, sd_event *e, const Config *c, const char *name, FrameHandler handler,
                        FrameAccess access, void *userdata);

/* sd-event priority of the listener and every peer (lower runs first), for now and later peers. */
void frame_server_set_priority(FrameServer *s, int64_t priority);

/* Reply helpers: a status-only reply of the given type. */
void wire_reply_init(FrameBuilder *reply, uint16_t type, int status, const char *error);
/* A successful WIRE_CONTROL_REPLY carrying result as compact JSON (ENOMEM if result is NULL or won't dump). */
void wire_reply_json(FrameBuilder *reply, const json_t *result);
/*
 * The command and optional argument of a WIRE_CONTROL_REQUEST. 0 when both
 * were read; 1 when the request was malformed and *reply already says why;
 * -EBADMSG when it is not a control request at all (close the peer).
 */
int wire_control_request_parse(const Frame *request, char **ret_command, char **ret_argument, FrameBuilder *reply);

/*
 * A control command: its JSON result, or NULL with *ret_error (answered
 * with error_status, ENOENT when 0) or without (ENOMEM). request is the
 * whole WIRE_CONTROL_REQUEST, for commands that read more than ARGUMENT.
 */
typedef struct WireControlCommand {
        const char *name;
        json_t *(*run)(void *userdata, const Frame *request, const char *argument, const char **ret_error);
        int error_status;
        /* Instead of run, for a command whose refusal names what was wrong: it writes the whole reply. */
        void (*serve)(void *userdata, const char *argument, FrameBuilder *reply);
} WireControlCommand;
/*
 * A daemon's whole control request, for daemons whose commands are all in
 * table: parsed (wire_control_request_parse), dispatched, or answered
 * EINVAL "unknown command; known: ..." with the table's names. <0 only when
 * request is not a control request at all (close the peer).
 */
int wire_control_serve(const WireControlCommand *table, size_t n, void *userdata, const Frame *request,
                       FrameBuilder *reply);

DEFINE_CLEANUP_FUNC(FrameServer, frame_server_free);
