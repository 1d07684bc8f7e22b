/* Every daemon's event loop: sd-event with the watchdog and the stop and reload signals */
#pragma once

#include <systemd/sd-event.h>

typedef struct DaemonSignals {
        sd_event_source *term;
        sd_event_source *interrupt;
        sd_event_source *hangup;
} DaemonSignals;

/*
 * sd_event_default() with the watchdog on (WatchdogSec= of the unit: the
 * loop pings while it runs), SIGTERM and SIGINT calling on_term (NULL: end
 * the loop with status 0) and SIGHUP answered with a notice that reloading
 * is not supported (no daemon reloads: a changed configuration needs a
 * restart). daemon_start() blocked the signals already. The sources are the
 * caller's, so a test can make and free a daemon twice in one process.
 */
int daemon_event_new(sd_event **ret_event, DaemonSignals *ret_signals, sd_event_signal_handler_t on_term,
                     void *userdata);
/* Releases the signal sources and the loop, in that order; returns NULL. */
sd_event *daemon_event_free(sd_event *e, DaemonSignals *s);
