/* A libmosquitto client driven by an sd-event loop (no thread of its own) */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <mosquitto.h>
#include <systemd/sd-event.h>

#include "proto/util/cleanup.h"

/*
 * libmosquitto without its thread: one sd-event I/O source on
 * mosquitto_socket() asks for EPOLLOUT only when libmosquitto (or, during a
 * TLS handshake, OpenSSL) has something to write, and mosquitto_loop_read/
 * write/misc run from the loop. Why not libmosquitto's thread: our callbacks
 * touch state only the loop's thread may (STYLE.md §13), and a stuck
 * connection must not hide from the watchdog. Shared by the internal bus
 * (proto/ipc/bus.c) and hub-store's upstream links (hub-store/link.c).
 *
 * One MosqEvent is one connection: it owns the client from mosquitto_new()
 * to mosquitto_destroy(), and a lost connection is not reconnected (a
 * reconnect in libmosquitto would resend from its memory; both callers
 * start over with a fresh client instead). What the caller's libmosquitto
 * callbacks learn they record; the caller acts on it in ops->processed or
 * ops->lost, once libmosquitto has returned: a libmosquitto callback must
 * never destroy the client it is called from.
 */
typedef struct MosqEvent MosqEvent;

typedef struct MosqEventOps {
        /*
         * The connection is gone (called once, from the loop): rc is
         * libmosquitto's error, MOSQ_ERR_SUCCESS when mosq_event_lost() said
         * so. error, a negative errno: with MOSQ_ERR_ERRNO, libmosquitto's
         * errno; with MOSQ_ERR_CONN_LOST, the socket's own error (SO_ERROR)
         * when libmosquitto did not notice it (a refused connect, a hang-up
         * during the TLS handshake: SSL_ERROR_SYSCALL hides it), 0 if it
         * closed without one. The owner may free the MosqEvent here.
         */
        void (*lost)(void *userdata, int rc, int error);
        /*
         * After each turn of libmosquitto that left the connection up: act
         * on what the callbacks recorded (a CONNACK, acknowledgements). The
         * owner may free the MosqEvent here too. Optional.
         */
        void (*processed)(void *userdata);
} MosqEventOps;

/*
 * A new client (clean session) whose libmosquitto callbacks get userdata.
 * misc_usec: how often mosquitto_loop_misc() runs (keepalive); 0: the
 * owner calls mosq_event_misc() itself.
 */
int mosq_event_new(MosqEvent **ret, sd_event *e, const char *client_id, uint64_t misc_usec, const MosqEventOps *ops,
                   void *userdata, const char *description);
/* The client, to configure, connect, publish and subscribe; NULL for NULL. */
struct mosquitto *mosq_event_client(const MosqEvent *m);
/*
 * Watches the socket once mosquitto_connect() or mosquitto_connect_async()
 * returned. connect_pending: the non-blocking connect may still be under
 * way (connect_async); its outcome is checked when the socket is writable.
 */
int mosq_event_attach(MosqEvent *m, bool connect_pending);
/* Packets were queued outside the loop (a publish): ask for EPOLLOUT if they wait. NULL is fine. */
void mosq_event_update(MosqEvent *m);
/* mosquitto_loop_misc() now (keepalive), for owners that tick themselves. */
void mosq_event_misc(MosqEvent *m);
/*
 * The connection is gone (an on_disconnect callback, a failed publish):
 * ops->lost follows from the loop, never from within this call.
 */
void mosq_event_lost(MosqEvent *m);
/* Also true for NULL: no connection. */
bool mosq_event_is_lost(const MosqEvent *m);
/* Stops watching, then mosquitto_destroy(): the fd number may be reused by the next connect. */
MosqEvent *mosq_event_free(MosqEvent *m);

DEFINE_CLEANUP_FUNC(MosqEvent, mosq_event_free);
