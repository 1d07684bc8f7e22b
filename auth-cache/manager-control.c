/* Control commands for hubctl and hub-store: status, devices, sync */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "auth-cache/manager.h"
#include "proto/ipc/wire.h"
#include "proto/util/cleanup.h"

static json_t *json_msec_or_null(uint64_t msec) {
        return msec > 0 ? json_integer((json_int_t) msec) : json_null();
}

static json_t *control_status(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        ScopeSyncStatus st = {};

        if (m->sync)
                scope_sync_get_status(m->sync, &st);
        return json_pack("{s:b, s:o, s:o, s:o, s:I, s:b, s:b, s:I}",
                         "synced", m->last_sync_ms > 0,
                         "last_sync_ms", json_msec_or_null(m->last_sync_ms),
                         "last_attempt_ms", json_msec_or_null(st.last_attempt_ms),
                         "last_error", st.last_error ? json_string(st.last_error) : json_null(),
                         "identities", (json_int_t) m->scope->n_items,
                         "syncing", st.syncing,
                         "broker_connected", m->broker ? broker_link_connected(m->broker) : false,
                         "kicks_pending", (json_int_t) (m->broker ? broker_link_pending(m->broker) : 0));
}

static json_t *control_devices(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        json_auto_t *list = json_array();

        if (!list)
                return NULL;
        for (size_t i = 0; i < m->scope->n_items; i++) {
                const Identity *id = m->scope->items[i];
                json_t *o = json_pack("{s:s, s:s, s:o, s:s, s:b, s:s}",
                                      "identity", id->name,
                                      "device_id", id->device_id,
                                      "module_id", id->module_id ? json_string(id->module_id) : json_null(),
                                      "status", id->enabled ? "enabled" : "disabled",
                                      "edge", id->edge,
                                      "auth", identity_auth_to_string(id->auth));
                if (!o || json_array_append_new(list, o) < 0)
                        return NULL;
        }
        return json_pack("{s:O}", "identities", list);
}

static json_t *control_sync(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        int started = m->sync ? scope_sync_start(m->sync) : 0;

        /* Already running counts as started: the caller wants a fresh scope soon, and one is on its way. */
        return json_pack("{s:b, s:b}", "started", m->sync != NULL, "already_running", m->sync && started == 0);
}

static const WireControlCommand control_commands[] = {
        { "status", control_status },
        { "devices", control_devices },
        { "sync", control_sync },
};

int manager_control(Manager *m, const Frame *request, FrameBuilder *reply) {
        return wire_control_serve(control_commands, ELEMENTSOF(control_commands), m, request, reply);
}
