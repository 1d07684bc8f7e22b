/* edgehub-method-router: direct methods between local clients, and from the cloud to them */
#include <signal.h>
#include <systemd/sd-daemon.h>

#include "method-router/manager.h"
#include "proto/runtime/config.h"
#include "proto/runtime/daemon.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        int r;

        r = daemon_start(argc, argv,
                         "Routes direct methods of an edgehub gateway: between modules and child devices\n"
                         "(HTTPS and MQTT), and from the cloud to them, with or without the uplink.",
                         &config);
        if (r != 0)
                return r < 0 ? r : 0;
        /* A client that goes away mid-reply must cost us a write error, not the process. */
        (void) signal(SIGPIPE, SIG_IGN);

        r = manager_new(&m, &config);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m");
        /* These log their own errors, naming the socket or address. */
        r = manager_listen(m);
        if (r < 0)
                return r;
        r = manager_start(m);
        if (r < 0)
                return r;

        (void) sd_notify(false, "READY=1\nSTATUS=Routing direct methods");
        r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

int main(int argc, char *argv[]) {
        return daemon_exit_status(run(argc, argv));
}
