/* edgehub-hub-store: the durable message store and the upstream links */
#include <inttypes.h>
#include <stdlib.h>
#include <mosquitto.h>
#include <systemd/sd-daemon.h>

#include "hub-store/manager.h"
#include "proto/runtime/config.h"
#include "proto/runtime/daemon.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        int r;

        r = daemon_start(argc, argv, "Stores upstream-bound telemetry durably and forwards it to the IoT Hub.",
                         &config);
        if (r != 0)
                return r < 0 ? r : 0;

        mosquitto_lib_init();

        r = manager_new(&m, TAKE_PTR(config));
        if (r < 0)
                return log_error_errno(r, "Failed to set up: %m");
        r = manager_start(m);
        if (r < 0)
                return r;

        (void) sd_notifyf(false, "READY=1\nSTATUS=%" PRIu64 " message(s) queued", store_messages(m->store));
        log_info("hub-store ready");

        r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");

        log_info("hub-store stopping");
        m = manager_free(m);
        mosquitto_lib_cleanup();
        return 0;
}

int main(int argc, char *argv[]) {
        return daemon_exit_status(run(argc, argv));
}
