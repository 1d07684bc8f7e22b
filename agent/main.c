/* edgehub-agent: the deployment manifest, the modules as supervised processes, their runtime status */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "agent/manager.h"
#include "proto/runtime/config.h"
#include "proto/runtime/daemon.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        sigset_t mask;
        int r;

        r = daemon_start(argc, argv,
                         "Runs an edgehub gateway's deployment: takes the manifest from the $edgeAgent twin\n"
                         "(or hubctl deploy), keeps the last good one for offline restarts, supervises the\n"
                         "modules as processes and reports their status.",
                         &config);
        if (r != 0)
                return r < 0 ? r : 0;
        /* sd-event's child sources need SIGCHLD blocked; no thread exists yet to inherit it unblocked. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(-errno, "Failed to block SIGCHLD: %m");
        (void) umask(0027);

        r = manager_new(&m, &config);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m");
        /* These log their own errors. The auth-cache client comes with the socket, before modules start. */
        r = manager_listen(m);
        if (r < 0)
                return r;
        r = manager_open_state(m);
        if (r < 0)
                return r;
        r = manager_start(m);
        if (r < 0)
                return r;

        (void) sd_notifyf(false, "READY=1\nSTATUS=Running %zu modules", m->n_modules);
        r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

int main(int argc, char *argv[]) {
        return daemon_exit_status(run(argc, argv));
}
