/* The environment of a module process: what the Azure IoT module SDKs read, plus the manifest's env */
#pragma once

#include <stdint.h>

#include "proto/iothub/manifest.h"
#include "proto/util/cleanup.h"

typedef struct ModuleEnvInput {
        const char *hub_hostname;     /* HostName, IOTEDGE_IOTHUBHOSTNAME */
        const char *gateway_hostname; /* IOTEDGE_GATEWAYHOSTNAME */
        uint16_t gateway_port;        /* appended to GatewayHostName unless 8883 or 0 */
        const char *device_id;
        const char *key;              /* the module's key (base64); NULL: no connection string */
        const char *ca_file;          /* EdgeModuleCACertificateFile; NULL: not set */
        const char *path;             /* PATH; NULL: a default */
        const char *home;             /* HOME, the module's private folder; NULL: not set */
        const char *workload_path;    /* the workload API's socket; NULL: none (the module gets a key instead) */
        const char *generation_id;    /* IOTEDGE_MODULEGENERATIONID, with workload_path */
        const ManifestModule *spec;
} ModuleEnvInput;

/*
 * A NULL-terminated "NAME=value" list:
 *   EdgeHubConnectionString=HostName={hub};GatewayHostName={gw}[:{port}];DeviceId={d};ModuleId={m};SharedAccessKey={key}
 *   EdgeModuleCACertificateFile, IOTEDGE_DEVICEID, IOTEDGE_MODULEID,
 *   IOTEDGE_IOTHUBHOSTNAME, IOTEDGE_GATEWAYHOSTNAME, PATH,
 * with workload_path (and no key): IOTEDGE_WORKLOADURI=unix://{path}, IOTEDGE_APIVERSION, IOTEDGE_AUTHSCHEME=sasToken,
 *   IOTEDGE_MODULEGENERATIONID, and IOTEDGE_GATEWAYHOSTNAME with the port as in GatewayHostName,
 *   so that ModuleClient.fromEnvironment() signs its tokens through the workload API;
 * then the manifest's env, except names we set (ours win: the identity is not the manifest's to change).
 * The Node SDK takes a port in GatewayHostName as the TCP target (see tests/simulator/README.md).
 */
int module_env_build(const ModuleEnvInput *in, char ***ret);
char **strv_free(char **l);

DEFINE_CLEANUP_FUNC(char *, strv_free);
