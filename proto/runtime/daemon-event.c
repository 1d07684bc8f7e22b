/* Every daemon's event loop: sd-event with the watchdog and the stop and reload signals */
#include <signal.h>
#include <stdbool.h>

#include "proto/runtime/daemon-event.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

/*
 * No daemon reloads: settings such as the hub name are baked into what is
 * persisted (auth-cache's scope) or opened at start (hub-store's store), so a
 * changed configuration takes a restart. Say so rather than die of SIGHUP.
 */
static int notice_no_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        log_notice("Reloading the configuration is not supported; restart the daemon to apply changes. Ignoring SIGHUP.");
        return 0;
}

/* sd-event's own default for a NULL handler exits with PTR_TO_INT(userdata), which is a
 * pointer's low bits here: a routine "systemctl stop" would leave the unit failed. */
static int exit_on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        return sd_event_exit(sd_event_source_get_event(s), 0);
}

int daemon_event_new(sd_event **ret_event, DaemonSignals *ret_signals, sd_event_signal_handler_t on_term,
                     void *userdata) {
        sd_event *e = NULL;
        DaemonSignals s = {};
        int r;

        r = sd_event_default(&e);
        if (r < 0)
                return r;
        (void) sd_event_set_watchdog(e, true);

        /* Without on_term, the loop exits with status 0 (the daemon's clean stop). */
        if (!on_term)
                on_term = exit_on_signal;
        r = sd_event_add_signal(e, &s.term, SIGTERM, on_term, userdata);
        if (r >= 0)
                r = sd_event_add_signal(e, &s.interrupt, SIGINT, on_term, userdata);
        if (r >= 0)
                r = sd_event_add_signal(e, &s.hangup, SIGHUP, notice_no_reload, userdata);
        if (r < 0) {
                daemon_event_free(e, &s);
                return r;
        }
        *ret_event = e;
        *ret_signals = s;
        return 0;
}

sd_event *daemon_event_free(sd_event *e, DaemonSignals *s) {
        s->hangup = sd_event_source_disable_unref(s->hangup);
        s->interrupt = sd_event_source_disable_unref(s->interrupt);
        s->term = sd_event_source_disable_unref(s->term);
        return sd_event_unref(e);
}
