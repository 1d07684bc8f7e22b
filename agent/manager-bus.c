/* The $edgeAgent twin over the bus: the deployment in (GET, desired patches), runtime status out (reported) */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "agent/manager.h"
#include "proto/iothub/twin-topic.h"
#include "proto/runtime/log.h"
#include "proto/runtime/state-file.h"
#include "proto/util/cleanup.h"

#define REPORTED_FILE "reported.json"

static bool has_prefix(const char *s, const char *prefix, const char **ret_rest) {
        size_t n = strlen(prefix);
        if (strncmp(s, prefix, n) != 0)
                return false;
        *ret_rest = s + n;
        return true;
}

static int on_get_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        /* Offline, or the link is still coming up: the saved deployment keeps running; the poll tries again. */
        log_debug("No answer to the $edgeAgent twin GET in time");
        free(m->get_rid);
        m->get_rid = NULL;
        m->get_timer = sd_event_source_disable_unref(m->get_timer);
        return 0;
}

void manager_fetch_twin(Manager *m) {
        _cleanup_free_ char *topic = NULL;
        int r;

        if (!m->bus || !bus_connected(m->bus) || m->get_rid || m->shutting_down)
                return;
        m->get_rid = bus_request_id_next(&m->rids);
        if (!m->get_rid || asprintf(&topic, "$iothub/" TWIN_TOPIC_GET_RID "%s", m->get_rid) < 0) {
                topic = NULL;
                free(m->get_rid);
                m->get_rid = NULL;
                return;
        }
        /* hub-store opens the $edgeAgent link if needed and holds this up to 30 s for it. */
        r = bus_publish(m->bus, BUS_TOPIC_UPSTREAM, "", 0, m->identity, topic, NULL, NULL);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &m->get_timer, CLOCK_MONOTONIC, AGENT_GET_TIMEOUT_USEC, 0,
                                               on_get_timeout, m);
        if (r < 0) {
                log_debug_errno(r, "Cannot ask for the $edgeAgent twin now: %m");
                free(m->get_rid);
                m->get_rid = NULL;
        }
}

static void on_twin_response(Manager *m, const TwinTopic *tt, const void *payload, size_t len) {
        json_error_t e;
        json_t *desired;

        if (!tt->rid || !m->get_rid || strcmp(tt->rid, m->get_rid) != 0)
                return; /* twin-sync's own request for this identity, or a late one */
        free(m->get_rid);
        m->get_rid = NULL;
        m->get_timer = sd_event_source_disable_unref(m->get_timer);
        if (tt->status != 200) {
                log_info("The cloud answered %d to the $edgeAgent twin GET; keeping the running deployment", tt->status);
                return;
        }
        json_auto_t *doc = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &e);
        if (!doc || json_unpack(doc, "{s:o}", "desired", &desired) < 0 || !json_is_object(desired)) {
                log_ratelimit_warning(&m->bad_input_log, "The cloud sent a malformed $edgeAgent twin; keeping the "
                                      "running deployment");
                return;
        }
        manager_twin_desired(m, desired);
}

static void on_cloud(Manager *m, const BusMessage *msg, const char *rest) {
        TwinTopic tt = TWIN_TOPIC_NULL;

        if (twin_topic_parse(rest, &tt) < 0) {
                twin_topic_deinit(&tt);
                return;
        }
        if (tt.kind == TWIN_TOPIC_RESPONSE)
                on_twin_response(m, &tt, msg->payload, msg->len);
        else if (tt.kind == TWIN_TOPIC_DESIRED && tt.version != m->twin_version)
                /* A patch is part of a document; the whole document is what we validate and apply. */
                manager_fetch_twin(m);
        twin_topic_deinit(&tt);
}

void manager_on_bus_message(Bus *b, const BusMessage *msg, void *userdata) {
        Manager *m = userdata;
        const char *rest;

        /* Every identity's twin traffic passes here; only $edgeAgent's is ours. */
        if (!msg->client || strcmp(msg->client, m->identity) != 0)
                return;
        if (has_prefix(msg->topic, BUS_PREFIX_CLOUD, &rest))
                on_cloud(m, msg, rest);
        else if (strcmp(msg->topic, BUS_TOPIC_LINK) == 0) {
                bool up = bus_link_state_from_payload(msg->payload, msg->len) == BUS_LINK_UP;
                if (up && !m->link_up)
                        manager_fetch_twin(m);
                m->link_up = up;
        }
}

void manager_on_bus_connected(Bus *b, void *userdata) {
        Manager *m = userdata;

        if (!m->broker_reached)
                manager_start_waiting_modules(m);
        manager_fetch_twin(m);
        manager_report_soon(m);
}

/* ---- reported properties ---- */

static int put_time(json_t *o, const char *key, uint64_t usec) {
        char buf[32];
        module_format_time(usec, buf);
        return json_object_set_new(o, key, json_string(buf));
}

json_t *manager_module_json(Manager *m, const Module *mod) {
        json_auto_t *o = json_pack("{s:s, s:i, s:s, s:I, s:s}", "runtimeStatus", runtime_status_to_string(mod->runtime),
                                   "exitCode", mod->exit_code, "statusDescription",
                                   mod->description ? mod->description : "", "restartCount",
                                   (json_int_t) mod->restart_count, "type", "process");
        if (!o || put_time(o, "lastStartTimeUtc", mod->last_start) < 0 ||
            put_time(o, "lastExitTimeUtc", mod->last_exit) < 0 ||
            put_time(o, "lastRestartTimeUtc", mod->last_restart) < 0)
                return NULL;
        if (mod->spec) {
                if (json_object_set_new(o, "status", json_string(module_status_to_string(mod->spec->status))) < 0 ||
                    json_object_set_new(o, "restartPolicy",
                                        json_string(restart_policy_to_string(mod->spec->restart_policy))) < 0 ||
                    (mod->spec->version && json_object_set_new(o, "version", json_string(mod->spec->version)) < 0))
                        return NULL;
        }
        return json_incref(o);
}

json_t *manager_reported_document(Manager *m) {
        struct utsname u;
        json_auto_t *modules = json_object();
        char started[32];

        if (!modules)
                return NULL;
        for (size_t i = 0; i < m->n_modules; i++) {
                const Module *mod = m->modules[i];
                if (!mod->spec)
                        continue; /* leaving: reported as removed */
                if (json_object_set_new(modules, mod->name, manager_module_json(m, mod)) < 0)
                        return NULL;
        }
        if (uname(&u) < 0)
                snprintf(u.machine, sizeof(u.machine), "unknown");
        module_format_time(m->applied_at, started);
        json_auto_t *doc = json_pack(
                "{s:s, s:{s:s}, s:{s:s, s:{s:s, s:s}}, s:{s:{s:s, s:s}, s:{s:s, s:s}}, s:O}", "schemaVersion", "1.1",
                "version", "version", PROJECT_VERSION, "runtime", "type", "process", "platform", "os", "linux",
                "architecture", u.machine, "systemModules", "edgeAgent", "runtimeStatus", "running", "type", "process",
                "edgeHub", "runtimeStatus", "running", "type", "process", "modules", modules);
        if (!doc)
                return NULL;
        if (m->twin_code != 0) {
                if (json_object_set_new(doc, "lastDesiredVersion", json_integer(m->twin_version)) < 0 ||
                    json_object_set_new(doc, "lastDesiredStatus",
                                        json_pack("{s:i, s:s}", "code", m->twin_code, "description",
                                                  m->twin_description ? m->twin_description : "")) < 0)
                        return NULL;
        }
        return json_incref(doc);
}

/* The patch from what the cloud last got to doc: the whole document, with null for modules that left. */
static json_t *reported_patch(Manager *m, json_t *doc) {
        json_auto_t *patch = json_deep_copy(doc);
        json_t *old_modules = m->reported ? json_object_get(m->reported, "modules") : NULL;
        json_t *modules = patch ? json_object_get(patch, "modules") : NULL;
        const char *name;
        json_t *v;

        if (!patch || !modules)
                return NULL;
        json_object_foreach(old_modules, name, v)
                if (!json_object_get(modules, name) && json_object_set_new(modules, name, json_null()) < 0)
                        return NULL;
        return json_incref(patch);
}

static void report_retry(Manager *m, uint64_t usec) {
        (void) sd_event_source_set_time_relative(m->report_timer, usec);
        (void) sd_event_source_set_enabled(m->report_timer, SD_EVENT_ONESHOT);
}

typedef struct ReportContext {
        Manager *manager;
        json_t *doc;
} ReportContext;

static void on_reported(Bus *b, int reason, void *userdata) {
        ReportContext *c = userdata;
        Manager *m = c->manager;
        _cleanup_free_ char *text = NULL;

        m->report_in_flight = false;
        /* 0x00: twin-sync has it (and keeps it durably). 0x10: twin-sync is not running: try again. */
        if (reason != BUS_REASON_SUCCESS) {
                log_debug("Reported properties not taken (reason %d), retrying", reason);
                json_decref(c->doc);
                free(c);
                report_retry(m, AGENT_REPORT_RETRY_USEC);
                return;
        }
        json_decref(m->reported);
        m->reported = c->doc;
        free(c);
        text = json_dumps(m->reported, JSON_COMPACT);
        if (text)
                (void) state_file_write(m->state_dir, REPORTED_FILE, text);
}

static int on_report_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *topic = NULL, *rid = NULL, *text = NULL;
        json_auto_t *doc = NULL, *patch = NULL;
        ReportContext *c;

        if (m->report_in_flight) {
                report_retry(m, AGENT_REPORT_COALESCE_USEC);
                return 0;
        }
        if (!m->bus || !bus_connected(m->bus))
                return 0; /* manager_on_bus_connected reports */
        doc = manager_reported_document(m);
        if (!doc) {
                report_retry(m, AGENT_REPORT_RETRY_USEC);
                return 0;
        }
        if (m->reported && json_equal(doc, m->reported))
                return 0;
        patch = reported_patch(m, doc);
        rid = bus_request_id_next(&m->rids);
        text = patch ? json_dumps(patch, JSON_COMPACT) : NULL;
        c = malloc(sizeof(*c));
        /* As a device's reported patch: twin-sync validates it, queues it durably, pushes it in order. */
        if (!rid || !text || !c || asprintf(&topic, BUS_PREFIX_DEVICE TWIN_TOPIC_REPORTED_RID "%s", rid) < 0) {
                topic = NULL;
                free(c);
                report_retry(m, AGENT_REPORT_RETRY_USEC);
                return 0;
        }
        *c = (ReportContext){ .manager = m, .doc = TAKE_PTR(doc) };
        if (bus_publish(m->bus, topic, text, strlen(text), m->identity, NULL, on_reported, c) < 0) {
                json_decref(c->doc);
                free(c);
                report_retry(m, AGENT_REPORT_RETRY_USEC);
                return 0;
        }
        m->report_in_flight = true;
        return 0;
}

void manager_report_soon(Manager *m) {
        int r;

        if (!m->report_timer) {
                r = sd_event_add_time_relative(m->event, &m->report_timer, CLOCK_MONOTONIC, AGENT_REPORT_COALESCE_USEC,
                                               0, on_report_timer, m);
                if (r < 0) {
                        log_warning_errno(r, "Cannot arm the report timer, the twin's reported status lags: %m");
                        return;
                }
                (void) sd_event_source_set_description(m->report_timer, "agent-report");
                return;
        }
        int enabled = SD_EVENT_OFF;
        (void) sd_event_source_get_enabled(m->report_timer, &enabled);
        /* Already armed: one report covers the burst. */
        if (enabled == SD_EVENT_OFF || m->report_in_flight)
                report_retry(m, AGENT_REPORT_COALESCE_USEC);
}

/* The last reported document, so a restart still nulls modules that left meanwhile. */
void manager_load_reported(Manager *m) {
        _cleanup_free_ char *text = NULL;
        size_t len;
        json_error_t e;

        if (state_file_read(m->state_dir, REPORTED_FILE, 2u * MANIFEST_MAX, &text, &len) < 0)
                return;
        m->reported = json_loadb(text, len, 0, &e);
        if (m->reported && !json_is_object(m->reported)) {
                json_decref(m->reported);
                m->reported = NULL;
        }
}
