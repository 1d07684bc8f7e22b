/* The one configuration file shared by every edgehub process (YAML) */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "proto/iothub/route-spec.h"
#include "proto/util/cleanup.h"

/*
 * Parsed by a table of {key path, typed parser, offsetof(Config, field)}
 * (config.c). Errors name file:line:column and the key; at startup an
 * invalid value refuses to start and an unknown key is a warning.
 * See config.example.yaml for every key and its default.
 */
typedef enum OverflowPolicy {
        OVERFLOW_DROP_OLDEST,
        OVERFLOW_REJECT_NEW,
        _OVERFLOW_POLICY_MAX,
        _OVERFLOW_POLICY_INVALID = -22,
} OverflowPolicy;

typedef enum SyncPolicy {
        SYNC_PERIODIC, /* fsync the WAL every sync_interval_msec */
        SYNC_ALWAYS,   /* fsync before every acknowledgement */
        _SYNC_POLICY_MAX,
        _SYNC_POLICY_INVALID = -22,
} SyncPolicy;

typedef struct UidRange {
        uint32_t first, last;
} UidRange;

typedef struct Config {
        char *source;                 /* file name, for messages */

        /* edge: */
        char *edge_device_id;         /* edge.device_id (required) */
        char *hub_hostname;           /* edge.hub_hostname (required) */
        char *gateway_hostname;       /* edge.gateway_hostname (default: hub_hostname) */
        char *edgehub_key;            /* edge.edgehub_key: base64 key of {edge}/$edgeHub (required) */

        /* upstream: */
        char *upstream_host;          /* upstream.host (default: hub_hostname) */
        uint16_t upstream_mqtt_port;  /* upstream.mqtt_port (8883) */
        uint16_t upstream_https_port; /* upstream.https_port (443) */
        char *upstream_ca_file;       /* upstream.ca_file (default: system store) */
        uint64_t scope_refresh_sec;   /* upstream.scope_refresh (3600) */
        uint64_t idle_timeout_sec;    /* upstream.idle_timeout (300): close an idle identity link */
        uint64_t token_ttl_sec;       /* upstream.token_ttl (3600) */
        uint32_t connect_rate;        /* upstream.connect_rate (20): links opened per second at most */

        /* listeners: */
        uint16_t tls_port;            /* listeners.tls.port (8883; 0 = off) */
        char *tls_bind;               /* listeners.tls.bind (0.0.0.0) */
        char *tls_cert_file;          /* listeners.tls.cert_file (required when tls.port != 0) */
        char *tls_key_file;           /* listeners.tls.key_file (required when tls.port != 0) */
        char *tls_client_ca_file;     /* listeners.tls.client_ca_file: CAs for certificateAuthority devices (none) */
        uint16_t plain_port;          /* listeners.plain.port (0 = off) */
        char *plain_bind;             /* listeners.plain.bind (127.0.0.1) */
        uint64_t max_token_lifetime_sec; /* listeners.max_token_lifetime (365d): a device token's se at most this far ahead */

        /* methods: the direct-method HTTPS listener of method-router, with listeners.tls's cert and key */
        uint16_t methods_port;        /* methods.port (443 when listeners.tls has a cert; 0 = off) */
        char *methods_bind;           /* methods.bind (0.0.0.0) */

        /* storage: */
        char *storage_dir;            /* storage.dir (/var/lib/edgehub) */
        uint64_t max_bytes;           /* storage.max_bytes (1 GiB) */
        OverflowPolicy overflow;      /* storage.overflow (drop_oldest) */
        SyncPolicy sync;              /* storage.sync (periodic) */
        uint64_t sync_interval_msec;  /* storage.sync_interval (1s) */
        uint64_t twin_queue_max_bytes; /* storage.twin_queue_max_bytes (256KiB): pending reported patches per identity */

        /* store_and_forward: */
        uint64_t ttl_sec;             /* store_and_forward.time_to_live (7200) */

        /* routes: name -> route, or name -> {route, priority, time_to_live_secs}.
         * Each route's syntax is checked here; route_table_new() builds the table.
         * Absent: one route "upstream" = CONFIG_ROUTE_DEFAULT. */
        RouteSpecs routes;

        /* metrics: (hub-store's Prometheus endpoint) */
        uint16_t metrics_port;        /* metrics.port (0 = off) */
        char *metrics_address;        /* metrics.address (127.0.0.1) */

        /* agent: (modules the agent runs connect to the hub as devices do) */
        char *agent_ca_file;          /* agent.ca_file: the CA modules trust for the hub (EdgeModuleCACertificateFile) */
        char *agent_gateway_hostname; /* agent.gateway_hostname (default: edge.gateway_hostname): modules' GatewayHostName */
        UidRange module_uids;         /* agent.module_uids (620000-629999): each module runs as one of these */
        char *modules_dir;            /* agent.modules_dir (storage.dir + "-modules"): each module's private folder */

        /* access: who may use the Unix sockets besides root and the hub's own uid (SO_PEERCRED) */
        char *access_read_group;      /* access.read_group (adm): read-only hubctl commands */
        char *access_admin_group;     /* access.admin_group (sudo): hubctl commands that change things */

        char *runtime_dir;            /* runtime_dir (/run/edgehub): sockets */
        int log_level;                /* log_level (info) */

        /* runner: (edgehub-run only) */
        char *mosquitto_path;         /* runner.mosquitto (/usr/sbin/mosquitto) */
        char *runner_user;            /* runner.user (edgehub): the daemons' user when edgehub-run is root */
        char *libexec_dir;            /* runner.libexec_dir (default: next to edgehub-run) */
        char *plugin_path;            /* runner.plugin (default: libexec_dir/edgehub-plugin.so) */
} Config;

/*
 * Parses a YAML document from f. On failure returns -EINVAL (or -ENOMEM) and
 * sets *ret_error to one line "FILE:LINE:COL: key 'a.b': what is wrong".
 * Unknown keys are not errors: each becomes one line in *ret_warnings
 * (newline-separated, NULL if none).
 */
int config_parse(FILE *f, const char *name, Config **ret, char **ret_error, char **ret_warnings);
/* Opens path and parses it; -errno with *ret_error naming the file if it can't be read. */
int config_load(const char *path, Config **ret, char **ret_error, char **ret_warnings);
Config *config_free(Config *c);

/* The identity of a module of the edge device itself ("{edge_device_id}/{module}": $edgeHub, $edgeAgent). */
int config_edge_identity(const Config *c, const char *module, char **ret);

/* Derived paths under runtime_dir. */
int config_socket_path(const Config *c, const char *name, char **ret); /* runtime_dir/name.sock */

const char *overflow_policy_to_string(OverflowPolicy p);
OverflowPolicy overflow_policy_from_string(const char *s);
const char *sync_policy_to_string(SyncPolicy p);
SyncPolicy sync_policy_from_string(const char *s);

DEFINE_CLEANUP_FUNC(Config, config_free);

/*
 * The exit status of a process that refuses its configuration or command
 * line. Supervisors must not restart it (edgehub-run; systemd's
 * RestartPreventExitStatus=): the same file would fail the same way.
 */
#define EXIT_CONFIG 2

/* The route when the file has no routes: everything to the IoT Hub. */
#define CONFIG_ROUTE_DEFAULT_NAME "upstream"
#define CONFIG_ROUTE_DEFAULT "FROM /messages/* INTO $upstream"

/* Socket names under runtime_dir. */
#define SOCKET_AUTH_CACHE "auth-cache"  /* WIRE_AUTH_*, WIRE_KEY_*, control */
#define SOCKET_HUB_STORE "hub-store"    /* configuration, storage folder, control */
#define SOCKET_BROKER "broker"          /* mosquitto's internal MQTT listener */
#define SOCKET_METHOD_ROUTER "method-router" /* control (hubctl methods) */
#define SOCKET_TWIN_SYNC "twin-sync"    /* control (hubctl twins) */
#define SOCKET_AGENT "agent"            /* control (hubctl modules, deployment, deploy) */
#define SOCKET_WORKLOAD "workload"      /* the agent's workload API for modules (HTTP, agent/workload.h) */
