/* A module the agent runs: its process, runtime status and restart back-off */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "proto/iothub/manifest.h"
#include "proto/util/cleanup.h"

/*
 * Restart policy and back-off as IoT Edge's edgeAgent applies them: a
 * module that exits is restarted if its policy covers how it exited
 * (always: any exit; on-failure and on-unhealthy: a non-zero exit or a
 * signal; never: not at all). Restarts wait 1 s, then double up to 5 min,
 * so a crash loop costs one fork per back-off period, never a storm. A
 * module that ran 10 minutes is healthy again: the back-off and
 * restartCount start over.
 */
#define MODULE_BACKOFF_MIN_USEC (1000u * 1000u)
#define MODULE_BACKOFF_MAX_USEC (5u * 60u * 1000u * 1000u)
#define MODULE_HEALTHY_USEC (10u * 60u * 1000u * 1000u)
/* SIGTERM, then SIGKILL after this long: within the 5 s edgehub-run gives the agent itself. */
#define MODULE_STOP_GRACE_USEC (4u * 1000u * 1000u)

/* edgeAgent's runtimeStatus values. */
typedef enum RuntimeStatus {
        RUNTIME_UNKNOWN,
        RUNTIME_RUNNING,
        RUNTIME_STOPPED,
        RUNTIME_FAILED,
        RUNTIME_BACKOFF,
        _RUNTIME_STATUS_MAX,
        _RUNTIME_STATUS_INVALID = -22,
} RuntimeStatus;

typedef struct Manager Manager;

typedef struct Module {
        Manager *manager;
        char *name;
        char *identity;             /* {edge}/{name} */
        const ManifestModule *spec; /* in manager->manifest; NULL once removed from the deployment */

        uid_t uid;                  /* its own uid and gid (module-user.h); 0: not picked yet */
        char generation_id[17];     /* IOTEDGE_MODULEGENERATIONID of the running process: new at each start */
        pid_t pid;                  /* 0: no process */
        sd_event_source *child;
        sd_event_source *restart_timer;
        sd_event_source *kill_timer;
        bool stopping;              /* we sent SIGTERM: its exit is not a crash */
        bool respawn;               /* changed: start the new spec once the old process is gone */

        RuntimeStatus runtime;
        int exit_code;              /* the last exit status, or 128 + signal */
        char *description;          /* statusDescription */
        uint64_t started_mono;      /* CLOCK_MONOTONIC usec of the last start */
        uint64_t last_start;        /* CLOCK_REALTIME usec; 0 = never */
        uint64_t last_exit;
        uint64_t last_restart;
        unsigned restart_count;
        uint64_t backoff_usec;      /* the next restart's delay */
} Module;

int module_new(Module **ret, Manager *manager, const char *edge_device_id, const ManifestModule *spec);
Module *module_free(Module *m);

/* Does policy restart a process that exited with this status (a code, or 128 + signal)? */
bool module_policy_restarts(RestartPolicy policy, int exit_code, bool signaled);
/* The delay before the next restart, given the last delay (0 = none yet) and how long the process ran. */
uint64_t module_backoff_next(uint64_t last_usec, uint64_t ran_usec);

const char *runtime_status_to_string(RuntimeStatus s);
/* "2026-11-27T19:41:15.123Z"; 0 gives edgeAgent's "never": "0001-01-01T00:00:00Z". */
void module_format_time(uint64_t realtime_usec, char buf[static 32]);

DEFINE_CLEANUP_FUNC(Module, module_free);
