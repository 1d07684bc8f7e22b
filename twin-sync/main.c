/* edgehub-twin-sync: twin cache, offline reported patches, desired delivery, reconcile on reconnect */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "proto/runtime/config.h"
#include "proto/runtime/daemon.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "twin-sync/manager.h"

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        int r;

        r = daemon_start(argc, argv,
                         "Keeps the twins of an edgehub gateway's devices and modules: answers twin\n"
                         "requests offline, queues reported patches durably, delivers desired changes\n"
                         "and reconciles both sides when the uplink returns.",
                         &config);
        if (r != 0)
                return r < 0 ? r : 0;
        (void) umask(0027);

        r = manager_new(&m, &config);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m");
        /* These log their own errors, naming the folder or socket. */
        r = manager_open_store(m);
        if (r < 0)
                return r;
        r = manager_listen(m);
        if (r < 0)
                return r;
        r = manager_start(m);
        if (r < 0)
                return r;

        (void) sd_notifyf(false, "READY=1\nSTATUS=Keeping %zu twins", key_map_size(&m->twins));
        r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

int main(int argc, char *argv[]) {
        return daemon_exit_status(run(argc, argv));
}
