/* NOTIFY_SOCKET for the processes edgehub-run starts: the receiving side of sd_notify(3) */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "proto/util/cleanup.h"

/*
 * Like systemd for Type=notify: a datagram socket whose path the children
 * get in NOTIFY_SOCKET; SO_PASSCRED makes the kernel stamp each datagram
 * with the sender's pid, which is how a message is tied to a child.
 */
typedef struct NotifyMessage {
        bool ready;         /* READY=1 */
        bool stopping;      /* STOPPING=1 */
        const char *status; /* STATUS=..., points into the parsed buffer; NULL if absent */
} NotifyMessage;

#define NOTIFY_MESSAGE_NULL ((NotifyMessage){})

typedef void (*NotifyHandler)(void *userdata, pid_t pid, const NotifyMessage *m);

typedef struct NotifySocket NotifySocket;

int notify_socket_new(NotifySocket **ret, sd_event *e, const char *path, NotifyHandler handler, void *userdata);
NotifySocket *notify_socket_free(NotifySocket *n);
const char *notify_socket_path(const NotifySocket *n);

/* Parses newline-separated assignments in place (buf[len] must be writable); unknown ones are ignored. */
void notify_message_parse(char *buf, size_t len, NotifyMessage *ret);

DEFINE_CLEANUP_FUNC(NotifySocket, notify_socket_free);
