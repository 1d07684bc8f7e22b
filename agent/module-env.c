/* The environment of a module process: what the Azure IoT module SDKs read, plus the manifest's env */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/module-env.h"
#include "proto/util/cleanup.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

char **strv_free(char **l) {
        if (!l)
                return NULL;
        for (char **p = l; *p; p++) {
                /* The connection string holds the module's key. */
                explicit_bzero(*p, strlen(*p));
                free(*p);
        }
        free(l);
        return NULL;
}

static const char *const ours[] = {
        "EdgeHubConnectionString", "EdgeModuleCACertificateFile", "IOTEDGE_DEVICEID", "IOTEDGE_MODULEID",
        "IOTEDGE_IOTHUBHOSTNAME", "IOTEDGE_GATEWAYHOSTNAME", "PATH", "HOME", "IOTEDGE_WORKLOADURI",
        "IOTEDGE_APIVERSION", "IOTEDGE_AUTHSCHEME", "IOTEDGE_MODULEGENERATIONID", "IotHubConnectionString",
};

static bool is_ours(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(ours); i++)
                if (strcmp(ours[i], name) == 0)
                        return true;
        return false;
}

static int add(char **l, size_t *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int add(char **l, size_t *n, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = vasprintf(&l[*n], fmt, ap);
        va_end(ap);
        if (r < 0) {
                l[*n] = NULL;
                return -ENOMEM;
        }
        (*n)++;
        return 0;
}

int module_env_build(const ModuleEnvInput *in, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        char gateway[300];
        size_t n = 0;
        const ManifestModule *spec = in->spec;

        l = calloc(ELEMENTSOF(ours) + spec->n_env + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        if (in->gateway_port != 0 && in->gateway_port != 8883)
                snprintf(gateway, sizeof(gateway), "%s:%u", in->gateway_hostname, in->gateway_port);
        else
                snprintf(gateway, sizeof(gateway), "%s", in->gateway_hostname);

        if (in->key && add(l, &n, "EdgeHubConnectionString=HostName=%s;GatewayHostName=%s;DeviceId=%s;ModuleId=%s;"
                                  "SharedAccessKey=%s", in->hub_hostname, gateway, in->device_id, spec->name, in->key) < 0)
                return -ENOMEM;
        if (in->ca_file && add(l, &n, "EdgeModuleCACertificateFile=%s", in->ca_file) < 0)
                return -ENOMEM;
        if (add(l, &n, "IOTEDGE_DEVICEID=%s", in->device_id) < 0 || add(l, &n, "IOTEDGE_MODULEID=%s", spec->name) < 0 ||
            add(l, &n, "IOTEDGE_IOTHUBHOSTNAME=%s", in->hub_hostname) < 0 ||
            add(l, &n, "IOTEDGE_GATEWAYHOSTNAME=%s", in->workload_path ? gateway : in->gateway_hostname) < 0 ||
            add(l, &n, "PATH=%s", in->path ? in->path : DEFAULT_PATH) < 0)
                return -ENOMEM;
        if (in->home && add(l, &n, "HOME=%s", in->home) < 0)
                return -ENOMEM;
        /* The API version IoT Edge 1.0.9+ announces; the SDKs send their own (the Node SDK 2018-06-28). */
        if (in->workload_path && !in->key &&
            (add(l, &n, "IOTEDGE_WORKLOADURI=unix://%s", in->workload_path) < 0 ||
             add(l, &n, "IOTEDGE_APIVERSION=2019-01-30") < 0 || add(l, &n, "IOTEDGE_AUTHSCHEME=sasToken") < 0 ||
             add(l, &n, "IOTEDGE_MODULEGENERATIONID=%s", in->generation_id ?: "") < 0))
                return -ENOMEM;
        for (size_t i = 0; i < spec->n_env; i++) {
                if (is_ours(spec->env[i].name))
                        continue;
                if (add(l, &n, "%s=%s", spec->env[i].name, spec->env[i].value) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(l);
        return 0;
}
