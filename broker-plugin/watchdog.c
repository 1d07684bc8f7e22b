/* The broker's systemd watchdog: pinged from mosquitto's own loop, so a wedged broker is restarted */
#include <inttypes.h>
#include <systemd/sd-daemon.h>

#include "broker-plugin/broker-api.h"
#include "broker-plugin/plugin.h"
#include "broker-plugin/watchdog.h"
#include "proto/ipc/frame.h"
#include "proto/runtime/log.h"

void watchdog_init(Watchdog *w) {
        uint64_t usec = 0;

        *w = (Watchdog) {};
        /* Checks WATCHDOG_PID too: we are mosquitto's main process, the one systemd watches. */
        if (sd_watchdog_enabled(false, &usec) <= 0 || usec == 0)
                return;
        w->interval_usec = usec / 2;
        w->last_usec = now_usec();
        (void) sd_notify(false, "WATCHDOG=1");
        log_info("edgehub plugin: pinging the systemd watchdog every %" PRIu64 " ms", w->interval_usec / 1000u);
}

void watchdog_tick(Watchdog *w) {
        if (w->interval_usec == 0)
                return;
        uint64_t now = now_usec();
        if (now - w->last_usec < w->interval_usec)
                return;
        w->last_usec = now;
        (void) sd_notify(false, "WATCHDOG=1");
}

int watchdog_tick_callback(int event, void *event_data, void *userdata) {
        Plugin *p = userdata;

        watchdog_tick(&p->watchdog);
        return MOSQ_ERR_SUCCESS;
}
