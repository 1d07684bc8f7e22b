/* hubctl methods: call a direct method on a local device or module through method-router */
#pragma once

#include <stdbool.h>

/* Exit codes shared with hubctl-main.c (part of the interface: scripts branch on them). */
#define HUBCTL_EXIT_USAGE 1
#define HUBCTL_EXIT_UNAVAILABLE 3 /* method-router is not running or does not answer */
#define HUBCTL_EXIT_DAEMON 4      /* it answered with something unexpected */
#define HUBCTL_EXIT_CALL 5        /* the call was refused or not answered (unknown, not connected, silent) */
#define HUBCTL_EXIT_DENIED 6      /* permission denied (SO_PEERCRED: access.admin_group) */

/*
 * "methods invoke TARGET METHOD [--payload JSON] [--timeout S] [--connect-timeout S]";
 * argv[0] is "methods". method-router answers its control socket at once,
 * so the call is started ("invoke") and its result polled ("result").
 * Returns the exit status.
 */
int hubctl_methods(const char *socket, bool json, int argc, char *argv[]);
