/* A module the agent runs: its process, runtime status and restart back-off */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/module.h"
#include "proto/util/backoff.h"
#include "proto/util/cleanup.h"

static const char *const runtime_status_names[_RUNTIME_STATUS_MAX] = {
        [RUNTIME_UNKNOWN] = "unknown",
        [RUNTIME_RUNNING] = "running",
        [RUNTIME_STOPPED] = "stopped",
        [RUNTIME_FAILED] = "failed",
        [RUNTIME_BACKOFF] = "backoff",
};

const char *runtime_status_to_string(RuntimeStatus s) {
        return s >= 0 && s < _RUNTIME_STATUS_MAX ? runtime_status_names[s] : "unknown";
}

int module_new(Module **ret, Manager *manager, const char *edge_device_id, const ManifestModule *spec) {
        _cleanup_(module_freep) Module *m = calloc(1, sizeof(Module));

        if (!m)
                return -ENOMEM;
        m->manager = manager;
        m->spec = spec;
        m->runtime = RUNTIME_UNKNOWN;
        m->name = strdup(spec->name);
        if (!m->name || asprintf(&m->identity, "%s/%s", edge_device_id, spec->name) < 0) {
                m->identity = NULL;
                return -ENOMEM;
        }
        *ret = TAKE_PTR(m);
        return 0;
}

Module *module_free(Module *m) {
        if (!m)
                return NULL;
        m->child = sd_event_source_disable_unref(m->child);
        m->restart_timer = sd_event_source_disable_unref(m->restart_timer);
        m->kill_timer = sd_event_source_disable_unref(m->kill_timer);
        free(m->description);
        free(m->identity);
        free(m->name);
        free(m);
        return NULL;
}

bool module_policy_restarts(RestartPolicy policy, int exit_code, bool signaled) {
        bool failed = signaled || exit_code != 0;

        /* We have no health checks: on-unhealthy restarts what on-failure restarts. */
        switch (policy) {
        case RESTART_ALWAYS:
                return true;
        case RESTART_ON_FAILURE:
        case RESTART_ON_UNHEALTHY:
                return failed;
        default:
                return false;
        }
}

uint64_t module_backoff_next(uint64_t last_usec, uint64_t ran_usec) {
        /* A module that ran long enough to count as healthy starts over. */
        if (ran_usec >= MODULE_HEALTHY_USEC)
                return MODULE_BACKOFF_MIN_USEC;
        return backoff_double(last_usec, MODULE_BACKOFF_MIN_USEC, MODULE_BACKOFF_MAX_USEC);
}

void module_format_time(uint64_t realtime_usec, char buf[static 32]) {
        struct tm tm;
        time_t t = (time_t) (realtime_usec / 1000000u);

        if (realtime_usec == 0 || !gmtime_r(&t, &tm)) {
                snprintf(buf, 32, "0001-01-01T00:00:00Z");
                return;
        }
        size_t n = strftime(buf, 24, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + n, 32 - n, ".%03uZ", (unsigned) (realtime_usec / 1000u % 1000u));
}
