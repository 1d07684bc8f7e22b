/* edgehub-run's supervisor: starts the processes in order, restarts them, stops them in reverse */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "proto/util/cleanup.h"
#include "runner/runner-child.h"
#include "runner/runner-notify.h"
#include "runner/runner-paths.h"
#include "runner/runner-setup.h"

/*
 * Order: auth-cache, hub-store, method-router, twin-sync, mosquitto; each
 * starts once the one before it was ready (the plugin needs both backends;
 * method-router and twin-sync wait for the broker on their own). Then READY=1 to our own
 * NOTIFY_SOCKET, if any, and "edgehub-run: all processes ready" on stderr.
 *
 * A process that exits is restarted (systemd's Restart=always) after a
 * backoff, except exit status 2, a configuration error
 * (RestartPreventExitStatus=2): then everything stops and the runner exits
 * with 2. SIGTERM, SIGINT or SIGHUP stop the processes in reverse order,
 * each with SIGTERM and, after 5 s, SIGKILL; a second SIGINT (Ctrl-C again)
 * kills what is left at once.
 */
enum {
        RUNNER_AUTH_CACHE,
        RUNNER_HUB_STORE,
        RUNNER_METHOD_ROUTER,
        RUNNER_TWIN_SYNC,
        RUNNER_AGENT,
        RUNNER_BROKER,
        _RUNNER_CHILD_MAX,
};

typedef struct ManagerSpec {
        const char *config_path;      /* absolute */
        const char *runtime_dir;
        const RunnerPaths *paths;
        const BrokerUser *broker_user;
        const BrokerUser *hub_user;   /* the daemons' user (runner-setup.h) */
        const char *broker_conf_path; /* NULL: no broker (--no-broker) */
} ManagerSpec;

typedef struct Manager {
        sd_event *event;
        sd_event_source *signal_sources[3];
        NotifySocket *notify;
        Child *children[_RUNNER_CHILD_MAX];
        bool ready_once[_RUNNER_CHILD_MAX];
        size_t n_children;
        size_t n_started;
        bool announced;
        bool stopping;
        uint64_t stop_requested_usec; /* CLOCK_MONOTONIC */
        int exit_code;
} Manager;

int manager_new(Manager **ret, const ManagerSpec *spec);
Manager *manager_free(Manager *m);

/* Starts the first process and runs the loop; returns the runner's exit status (0, or 2). */
int manager_run(Manager *m);

DEFINE_CLEANUP_FUNC(Manager, manager_free);
