/* edgehub-auth-cache: the device scope, persisted, and local credential checks */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "auth-cache/manager.h"
#include "proto/runtime/config.h"
#include "proto/runtime/daemon.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        int r;

        r = daemon_start(argc, argv,
                         "Keeps the device scope of an edgehub gateway: syncs identities and keys from\n"
                         "the cloud, persists them, and checks device credentials for the broker.",
                         &config);
        if (r != 0)
                return r < 0 ? r : 0;
        /* The scope store holds every device's keys: no file of ours is for other users. */
        (void) umask(0027);

        r = manager_new(&m, &config);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m");
        /* These log their own errors, naming the file, folder or socket. */
        r = manager_load_trust(m);
        if (r < 0)
                return -EBADR; /* the same file fails the same way: not restarted */
        r = manager_open_store(m);
        if (r < 0)
                return r;
        r = manager_listen(m);
        if (r < 0)
                return r;
        r = manager_start(m);
        if (r < 0)
                return r;

        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving %zu identities", m->scope->n_items);
        r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

int main(int argc, char *argv[]) {
        return daemon_exit_status(run(argc, argv));
}
