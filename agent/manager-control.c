/* Control commands on agent.sock for hubctl: modules, deployment, deploy */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agent/manager.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

static json_t *control_modules(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        json_auto_t *list = json_array();

        if (!list)
                return NULL;
        for (size_t i = 0; i < m->n_modules; i++) {
                const Module *mod = m->modules[i];
                json_auto_t *o = manager_module_json(m, mod);
                if (!o || json_object_set_new(o, "name", json_string(mod->name)) < 0 ||
                    json_object_set_new(o, "pid", json_integer(mod->pid)) < 0 ||
                    json_object_set_new(o, "deployed", json_boolean(mod->spec != NULL)) < 0 ||
                    json_object_set_new(o, "backoffMs", json_integer((json_int_t) (mod->backoff_usec / 1000u))) < 0 ||
                    json_array_append(list, o) < 0)
                        return NULL;
        }
        return json_pack("{s:O}", "modules", list);
}

static json_t *deployment_json(Manager *m) {
        char at[32];
        json_t *v;

        module_format_time(m->applied_at, at);
        json_auto_t *last = m->last_code == 0 ? json_null()
                                              : json_pack("{s:s, s:I, s:i, s:s}", "source",
                                                          deployment_source_to_string(m->last_source), "version",
                                                          (json_int_t) m->last_version, "code", m->last_code,
                                                          "description", m->last_description ? m->last_description : "");
        json_auto_t *applied = !m->manifest ? json_null()
                                            : json_pack("{s:s, s:I, s:s, s:s, s:I}", "source",
                                                        deployment_source_to_string(m->source), "version",
                                                        (json_int_t) ((v = json_object_get(m->manifest_json, "$version")) &&
                                                                      json_is_integer(v)
                                                                              ? json_integer_value(v)
                                                                              : (m->source == SOURCE_TWIN ? m->twin_version : -1)),
                                                        "schemaVersion", m->manifest->schema_version, "appliedAt", at,
                                                        "modules", (json_int_t) m->manifest->n_modules);
        if (!last || !applied)
                return NULL;
        return json_pack("{s:O, s:O, s:I, s:b, s:b}", "applied", applied, "last", last, "twinVersion",
                         (json_int_t) m->twin_version, "linkUp", m->link_up, "busConnected",
                         m->bus && bus_connected(m->bus));
}

static json_t *control_deployment(void *userdata, const Frame *request, const char *argument, const char **ret_error) {
        Manager *m = userdata;
        return deployment_json(m);
}

/* deploy: the argument is the manifest's text, checked and applied as a twin's would be. */
static void control_deploy(void *userdata, const char *argument, FrameBuilder *reply) {
        Manager *m = userdata;
        _cleanup_free_ char *error = NULL;

        if (!argument) {
                wire_reply_init(reply, WIRE_CONTROL_REPLY, EINVAL, "a manifest is required");
                return;
        }
        int r = manager_deploy(m, argument, strlen(argument), SOURCE_FILE, -1, &error);
        if (r < 0) {
                wire_reply_init(reply, WIRE_CONTROL_REPLY, r == -ENOMEM ? ENOMEM : EINVAL,
                                error ? error : "out of memory");
                return;
        }
        json_auto_t *result = deployment_json(m);
        wire_reply_json(reply, result);
}

static const WireControlCommand control_commands[] = {
        { "modules", control_modules },
        { "deployment", control_deployment },
        { "deploy", .serve = control_deploy },
};

unsigned manager_request_access(void *userdata, const Frame *request) {
        static const char *const admin[] = { "deploy", NULL };
        return wire_control_access(request, admin);
}

int manager_handle_request(void *userdata, const Frame *request, FrameBuilder *reply) {
        return wire_control_serve(control_commands, ELEMENTSOF(control_commands), userdata, request, reply);
}
