/* Control commands on twin-sync.sock for hubctl: twins, twin ID */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "twin-sync/manager.h"
#include "twin-sync/twin-store.h"

static json_t *twin_summary(const Twin *t) {
        return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:s, s:b}", "identity", t->identity, "desired_version",
                         (json_int_t) t->desired_version, "reported_version", (json_int_t) t->reported_version,
                         "seen_version", (json_int_t) t->seen_version, "pending", (json_int_t) t->n_pending,
                         "pending_bytes", (json_int_t) t->pending_bytes,
                         "connected", t->heard_presence && t->connected, "link", bus_link_state_to_string(t->link),
                         "in_flight", t->push_rid != NULL);
}

static json_t *control_twins(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        json_auto_t *list = json_array();
        uint64_t pending = 0;

        if (!list)
                return NULL;
        for (size_t i = 0; i < key_map_size(&m->twins); i++) {
                const Twin *t = key_map_value_at(&m->twins, i);
                pending += t->n_pending;
                if (json_array_append_new(list, twin_summary(t)) < 0)
                        return NULL;
        }
        return json_pack("{s:O, s:I, s:I, s:b}", "twins", list, "pending", (json_int_t) pending, "links_up",
                         (json_int_t) m->links_up, "bus_connected", m->bus && bus_connected(m->bus));
}

static json_t *control_twin(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        if (!argument) {
                *ret_error = "an identity is required";
                return NULL;
        }
        const Twin *t = key_map_get(&m->twins, argument, strlen(argument));
        if (!t) {
                *ret_error = "no twin for this identity";
                return NULL;
        }
        json_auto_t *o = twin_summary(t);
        json_t *pending = twin_store_pending(m->kv, t);
        if (!o || !pending || json_object_set_new(o, "pending_patches", pending) < 0 ||
            json_object_set(o, "desired", t->desired) < 0 || json_object_set(o, "reported", t->reported) < 0 ||
            json_object_set(o, "seen", t->seen) < 0)
                return NULL;
        return json_incref(o);
}

static const WireControlCommand control_commands[] = {
        { "twins", control_twins },
        { "twin", control_twin },
};

unsigned manager_request_access(void *userdata, const Frame *request) {
        return wire_control_access(request, NULL);
}

int manager_handle_request(void *userdata, const Frame *request, FrameBuilder *reply) {
        return wire_control_serve(control_commands, ELEMENTSOF(control_commands), userdata, request, reply);
}
