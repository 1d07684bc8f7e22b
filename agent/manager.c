/* The agent daemon: its loop, state folder, bus and control socket */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/manager.h"
#include "agent/module-user.h"
#include "agent/saved-deployment.h"
#include "agent/workload.h"
#include "proto/runtime/log.h"
#include "proto/runtime/state-file.h"
#include "proto/util/cleanup.h"

#define BAD_INPUT_LOG_INTERVAL_USEC (10u * 1000u * 1000u)
#define BAD_INPUT_LOG_BURST 20u
#define DEPLOYMENT_FILE "deployment.json"
#define DEPLOYMENT_FILE_MAX (2u * MANIFEST_MAX)

const char *deployment_source_to_string(DeploymentSource s) {
        switch (s) {
        case SOURCE_TWIN:
                return "twin";
        case SOURCE_FILE:
                return "file";
        default:
                return "none";
        }
}

DeploymentSource deployment_source_from_string(const char *s) {
        if (s && strcmp(s, "twin") == 0)
                return SOURCE_TWIN;
        if (s && strcmp(s, "file") == 0)
                return SOURCE_FILE;
        return SOURCE_NONE;
}

static int on_sigterm(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;
        /* Modules are ours: they stop with us, gracefully, before the loop ends. */
        manager_shutdown(m);
        return 0;
}

int manager_new(Manager **ret, Config **config) {
        _cleanup_(manager_freep) Manager *m = NULL;
        int r;

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->bad_input_log = RATELIMIT_INIT(BAD_INPUT_LOG_INTERVAL_USEC, BAD_INPUT_LOG_BURST);
        m->auth_cache = FRAME_CLIENT_NULL;
        m->hub_store = FRAME_CLIENT_NULL;
        m->twin_version = -1;
        m->last_version = -1;
        m->config = TAKE_PTR(*config);
        m->module_users = module_users_possible();
        if (m->module_users)
                log_info("Modules run as their own users (uids %u-%u), in '%s'", (unsigned) m->config->module_uids.first,
                         (unsigned) m->config->module_uids.last, m->config->modules_dir);
        else
                log_warning("Neither root nor CAP_SETUID/CAP_SETGID: modules run as our own user and can reach "
                            "everything the hub can (a development setup, not for untrusted modules)");
        if (config_edge_identity(m->config, "$edgeAgent", &m->identity) < 0)
                return -ENOMEM;
        bus_request_ids_init(&m->rids, "ea");

        r = daemon_event_new(&m->event, &m->signals, on_sigterm, m);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_modules; i++) {
                Module *mod = m->modules[i];
                /* Only reached with modules still running when the grace ran out, or on a failed start. */
                if (mod->pid > 0)
                        (void) kill(-mod->pid, SIGKILL);
                if (m->bus)
                        bus_forget(m->bus, mod);
                module_free(mod);
        }
        free(m->modules);
        if (m->bus)
                bus_forget(m->bus, m);
        m->bus = bus_free(m->bus);
        m->server = frame_server_free(m->server);
        m->workload = workload_server_free(m->workload);
        free(m->workload_path);
        frame_client_deinit(&m->auth_cache);
        frame_client_deinit(&m->hub_store);
        free(m->storage_sent);
        free(m->storage_pending);
        m->retry_storage = sd_event_source_disable_unref(m->retry_storage);
        manifest_free(m->manifest);
        json_decref(m->manifest_json);
        json_decref(m->reported);
        free(m->last_description);
        free(m->twin_description);
        free(m->get_rid);
        free(m->state_dir);
        free(m->identity);
        m->shutdown_timer = sd_event_source_disable_unref(m->shutdown_timer);
        m->report_timer = sd_event_source_disable_unref(m->report_timer);
        m->get_timer = sd_event_source_disable_unref(m->get_timer);
        m->poll_timer = sd_event_source_disable_unref(m->poll_timer);
        m->event = daemon_event_free(m->event, &m->signals);
        config_free(m->config);
        free(m);
        return NULL;
}

/* What the last deployment tried came to, so a refusal outlives a restart (hubctl deployment, lastDesiredStatus). */
static json_t *outcome_json(int code, const char *description, int64_t version, DeploymentSource source) {
        if (code == 0)
                return json_null();
        return json_pack("{s:i, s:s, s:I, s:s}", "code", code, "description", description ? description : "",
                         "version", (json_int_t) version, "source", deployment_source_to_string(source));
}

/*
 * Persisted: the manifest, where it came from, the twin version handled and
 * the outcomes of the last deployment tried (from anywhere, and from the
 * twin), so an offline restart runs the deployment and still says why the
 * last one was refused.
 */
int manager_save_deployment(Manager *m) {
        if (m->loading)
                return 0; /* re-applying the saved one: the file already says so */
        json_auto_t *doc = json_pack("{s:O?, s:s, s:I, s:I, s:o, s:o}", "manifest", m->manifest_json, "source",
                                     deployment_source_to_string(m->source), "twinVersion",
                                     (json_int_t) m->twin_version, "appliedAt", (json_int_t) m->applied_at, "last",
                                     outcome_json(m->last_code, m->last_description, m->last_version, m->last_source),
                                     "twin", outcome_json(m->twin_code, m->twin_description, m->twin_version,
                                                          SOURCE_TWIN));
        _cleanup_free_ char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        if (!text)
                return -ENOMEM;
        int r = state_file_write(m->state_dir, DEPLOYMENT_FILE, text);
        if (r < 0)
                log_error_errno(r, "Cannot save the deployment in '%s/%s', a restart runs the previous one: %m",
                                m->state_dir, DEPLOYMENT_FILE);
        return r;
}

int manager_open_state(Manager *m) {
        _cleanup_(saved_deployment_deinit) SavedDeployment saved = SAVED_DEPLOYMENT_NULL;
        _cleanup_free_ char *text = NULL, *error = NULL, *manifest_text = NULL;
        size_t len;
        int r;

        r = state_dir_prepare(m->config->storage_dir, "agent", &m->state_dir);
        if (r < 0)
                return r;
        if (mkdir(m->state_dir, 0750) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "Cannot create the agent's folder '%s': %m", m->state_dir);

        manager_load_reported(m);
        r = state_file_read(m->state_dir, DEPLOYMENT_FILE, DEPLOYMENT_FILE_MAX, &text, &len);
        if (r == -ENOENT) {
                log_info("No deployment saved yet: waiting for the $edgeAgent twin or hubctl deploy");
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Cannot read the saved deployment '%s/%s': %m", m->state_dir, DEPLOYMENT_FILE);
        r = saved_deployment_parse(text, len, &saved, &error);
        if (r < 0) {
                /* Written atomically by us: damage means someone else wrote it. Start empty rather than never. */
                log_warning("The saved deployment '%s/%s' is malformed (%s); starting without it", m->state_dir,
                            DEPLOYMENT_FILE, error ? error : "out of memory");
                return 0;
        }
        m->twin_version = saved.twin_version;
        if (saved.manifest) {
                manifest_text = json_dumps(saved.manifest, JSON_COMPACT);
                if (!manifest_text)
                        return log_error_errno(-ENOMEM, "Out of memory");
                DeploymentSource src = deployment_source_from_string(saved.source);
                json_t *v = json_object_get(saved.manifest, "$version");
                free(error);
                error = NULL;
                m->loading = true;
                r = manager_deploy(m, manifest_text, strlen(manifest_text), src,
                                   json_is_integer(v) ? json_integer_value(v) : -1, &error);
                m->loading = false;
                if (r < 0) {
                        /* E.g. an executable that is gone: keep the file, the twin or hubctl deploy may fix it. */
                        log_warning("The saved deployment no longer applies: %s", error ? error : "out of memory");
                        return 0; /* that refusal is the news now, not the saved outcome */
                }
                m->applied_at = (uint64_t) saved.applied_at;
                log_info("Running the saved deployment (%s, %zu modules)", deployment_source_to_string(src),
                         m->manifest->n_modules);
        }
        /* Re-applying recorded a success; what was last said before the restart is what stays true. */
        manager_restore_outcome(m, saved.last, false);
        manager_restore_outcome(m, saved.twin, true);
        m->twin_version = saved.twin_version;
        return 0;
}

int manager_listen(Manager *m) {
        _cleanup_free_ char *auth = NULL, *store = NULL;
        int r;

        if (config_socket_path(m->config, SOCKET_AUTH_CACHE, &auth) < 0 ||
            config_socket_path(m->config, SOCKET_HUB_STORE, &store) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = frame_client_init(&m->auth_cache, auth);
        if (r >= 0)
                r = frame_client_init(&m->hub_store, store);
        if (r < 0)
                return log_error_errno(r, "Cannot set up the auth-cache and hub-store clients: %m");
        /* Anyone may connect; hubctl deploy is an administrator's, the rest the read group's. */
        r = frame_server_listen(&m->server, m->event, m->config, SOCKET_AGENT, manager_handle_request,
                                manager_request_access, m);
        if (r < 0)
                return r;

        /* Only where a caller's uid names its module: with module users. */
        if (!m->module_users)
                return 0;
        if (config_socket_path(m->config, SOCKET_WORKLOAD, &m->workload_path) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = workload_server_new(&m->workload, m, m->workload_path);
        if (r < 0)
                return log_error_errno(r, "Cannot serve the workload API on '%s': %m", m->workload_path);
        return 0;
}

static int on_poll(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;

        manager_fetch_twin(m);
        (void) sd_event_source_set_time_relative(s, AGENT_POLL_USEC);
        return 0;
}

int manager_start(Manager *m) {
        _cleanup_free_ char *broker = NULL;
        static const char *const filters[] = { BUS_PREFIX_CLOUD "twin/#", BUS_TOPIC_LINK };
        static const BusHandlers handlers = {
                .message = manager_on_bus_message,
                .connected = manager_on_bus_connected,
        };
        int r;

        if (config_socket_path(m->config, SOCKET_BROKER, &broker) < 0)
                return log_error_errno(-ENOMEM, "Out of memory");
        r = bus_new(&m->bus, m->event, broker, "agent", &handlers, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the bus client: %m");
        for (size_t i = 0; i < ELEMENTSOF(filters); i++) {
                r = bus_add_subscription(m->bus, filters[i]);
                if (r < 0)
                        return log_error_errno(r, "Failed to subscribe to '%s': %m", filters[i]);
        }
        r = bus_start(m->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to start the bus client: %m");

        r = sd_event_add_time_relative(m->event, &m->poll_timer, CLOCK_MONOTONIC, AGENT_POLL_USEC, 0, on_poll, m);
        if (r < 0)
                return log_error_errno(r, "Cannot arm the twin poll timer: %m");
        (void) sd_event_source_set_description(m->poll_timer, "agent-twin-poll");
        (void) sd_event_source_set_enabled(m->poll_timer, SD_EVENT_ON);
        return 0;
}
