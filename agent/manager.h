/* The agent daemon: the deployment, its modules, the $edgeAgent twin and the control socket */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "agent/module.h"
#include "agent/workload.h"
#include "proto/iothub/manifest.h"
#include "proto/ipc/bus.h"
#include "proto/ipc/client.h"
#include "proto/ipc/frame.h"
#include "proto/ipc/server.h"
#include "proto/runtime/config.h"
#include "proto/runtime/daemon-event.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

/* hub-store closes idle links: asking again this often also picks up a deployment whose patch we missed. */
#define AGENT_POLL_USEC (60u * 1000u * 1000u)
#define AGENT_GET_TIMEOUT_USEC (10u * 1000u * 1000u)
#define AGENT_REPORT_COALESCE_USEC (500u * 1000u)
#define AGENT_REPORT_RETRY_USEC (5u * 1000u * 1000u)
#define AGENT_KEY_TIMEOUT_USEC (1000u * 1000u)

/* lastDesiredStatus codes, as edgeAgent uses them. */
#define DESIRED_OK 200
#define DESIRED_INVALID 400
#define DESIRED_BAD_SCHEMA 412
#define DESIRED_FAILED 500

typedef enum DeploymentSource {
        SOURCE_NONE,
        SOURCE_TWIN,
        SOURCE_FILE,
} DeploymentSource;

typedef struct Manager {
        sd_event *event;
        DaemonSignals signals;
        sd_event_source *poll_timer;
        sd_event_source *get_timer;
        sd_event_source *report_timer;
        sd_event_source *shutdown_timer;

        Config *config;
        char *state_dir;           /* {storage_dir}/agent */
        char *identity;            /* {edge_device_id}/$edgeAgent */
        FrameServer *server;
        FrameClient auth_cache;
        FrameClient hub_store;     /* the storage folder request */
        Bus *bus;
        /* The bus connected once: the broker listens, so modules (who reach the hub only through it) may start. */
        bool broker_reached;

        /* The applied deployment: its manifest, its text (as persisted), where it came from. */
        Manifest *manifest;
        json_t *manifest_json;
        DeploymentSource source;
        uint64_t applied_at;       /* CLOCK_REALTIME usec */
        /* The $edgeAgent desired version last handled (applied or refused); -1 none. */
        int64_t twin_version;
        /* The outcome of the last deployment tried, from the twin or a file. */
        int last_code;
        char *last_description;
        int64_t last_version;
        DeploymentSource last_source;
        /* The same for the twin alone: lastDesiredStatus. 0 = none yet. */
        int twin_code;
        char *twin_description;

        Module **modules;
        size_t n_modules;
        WorkloadServer *workload;  /* modules sign their tokens here (agent/workload.h); NULL without module users */
        char *workload_path;
        bool module_users;         /* modules run as their own uids (we are root or have CAP_SETUID/SETGID) */

        BusRequestIds rids;
        char *get_rid;             /* the twin GET in flight */
        bool link_up;
        json_t *reported;          /* the last reported document twin-sync accepted; NULL none yet */
        bool report_in_flight;
        bool shutting_down;
        bool loading;              /* re-applying the saved deployment at start: nothing new to save */

        /* The edgeHub storageFolder hub-store accepted, and one still to tell it (it was not answering). */
        char *storage_sent;
        char *storage_pending;
        sd_event_source *retry_storage;

        RateLimit bad_input_log;
} Manager;

int manager_new(Manager **ret, Config **config);
Manager *manager_free(Manager *m);

/* Creates {storage_dir}/agent and applies the deployment saved there, if any. Logs its errors. */
int manager_open_state(Manager *m);
/* Binds {runtime_dir}/agent.sock (mode 0660). */
int manager_listen(Manager *m);
/* Connects to the bus and arms the twin poll. */
int manager_start(Manager *m);

/* manager-deployment.c */
/*
 * Parses, checks and applies a manifest (text). On refusal returns
 * -EBADMSG (or -ENOENT etc. for a missing executable) with *ret_error; the
 * running deployment is left as it was. version: the twin's $version, or
 * -1 for a local file (its own "$version" if it has one).
 */
int manager_deploy(Manager *m, const void *text, size_t len, DeploymentSource source, int64_t version,
                   char **ret_error);
int manager_save_deployment(Manager *m);
/* Remembers (and saves) what a deployment tried came to; reported as lastDesiredStatus when from the twin. */
void manager_record_outcome(Manager *m, DeploymentSource source, int64_t version, int code, const char *description);
/* Takes back an outcome saved by manager_save_deployment() (twin: lastDesiredStatus's); malformed ones are ignored. */
void manager_restore_outcome(Manager *m, json_t *outcome, bool twin);
/* Called with the twin's full desired properties. */
void manager_twin_desired(Manager *m, json_t *desired);

/* manager-modules.c */
/* Makes the running modules match m->manifest (removed stopped, changed restarted, new started). */
void manager_reconcile(Manager *m);
void manager_module_start(Manager *m, Module *mod);
void manager_start_waiting_modules(Manager *m);
void manager_module_stop(Manager *m, Module *mod);
/* SIGTERM to every module; the loop exits once all are gone (or after the grace). */
void manager_shutdown(Manager *m);
Module *manager_find_module(Manager *m, const char *name);
/* The module identity's key from auth-cache (base64; the caller wipes it). -ENOENT unknown, -EACCES disabled. */
int manager_fetch_module_key(Manager *m, const char *identity, char **ret);

/* manager-bus.c */
void manager_on_bus_message(Bus *b, const BusMessage *msg, void *userdata);
void manager_on_bus_connected(Bus *b, void *userdata);
void manager_fetch_twin(Manager *m);
/* Schedules a reported patch with the current state (coalesced). */
void manager_report_soon(Manager *m);
json_t *manager_reported_document(Manager *m);
/* Loads what was last reported (a restart must still null modules that left). */
void manager_load_reported(Manager *m);

/* manager-storage.c */
/*
 * Tells hub-store where the manifest wants the message store (its edgeHub
 * storageFolder, else storage.dir). 0 accepted, unchanged, or hub-store not
 * answering (told later, retried); -errno with *ret_error when it refused
 * the folder: the deployment is refused with it.
 */
int manager_storage_folder(Manager *m, const Manifest *manifest, char **ret_error);

/* manager-control.c */
int manager_handle_request(void *userdata, const Frame *request, FrameBuilder *reply);
/* The PEER_* rights a request needs (proto/ipc/server.h FrameAccess). */
unsigned manager_request_access(void *userdata, const Frame *request);
json_t *manager_module_json(Manager *m, const Module *mod);

const char *deployment_source_to_string(DeploymentSource s);
DeploymentSource deployment_source_from_string(const char *s);

DEFINE_CLEANUP_FUNC(Manager, manager_free);
