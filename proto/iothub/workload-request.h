/* IoT Edge's workload API: the requests a module's SDK sends, parsed once */
#pragma once

#include <stddef.h>
#include <stdint.h>

/*
 * What the Azure IoT module SDKs send to $IOTEDGE_WORKLOADURI (the Node SDK's
 * IotEdgeAuthenticationProvider, api-version 2018-06-28; IoT Edge also
 * serves 2019-01-30 and later, which the same two requests keep):
 *   GET  /trust-bundle?api-version=V                   -> {"certificate": PEM}
 *   POST /modules/{m}/genid/{g}/sign?api-version=V     -> {"digest": base64}
 *        {"keyId": "primary", "algo": "HMACSHA256", "data": base64}
 * The path is as libmicrohttpd hands it over (percent-decoded, no query);
 * api_version is the query argument (NULL if absent). Every field here
 * comes from a module, which may be hostile (fuzz-workload-request.c).
 */
#define WORKLOAD_BODY_MAX 8192u     /* a sign request is ~200 bytes */
#define WORKLOAD_DATA_MAX 4096u     /* what a module may have signed: a SAS token's "{uri}\n{expiry}" */
#define WORKLOAD_GENID_MAX 64u

typedef enum WorkloadKind {
        WORKLOAD_TRUST_BUNDLE,
        WORKLOAD_SIGN,
} WorkloadKind;

typedef struct WorkloadRequest {
        WorkloadKind kind;
        char *module_id;            /* WORKLOAD_SIGN: a valid IoT Hub id */
        char *generation_id;        /* WORKLOAD_SIGN: 1..64 of [A-Za-z0-9._-] */
        uint8_t *data;              /* WORKLOAD_SIGN: decoded "data" */
        size_t data_len;
} WorkloadRequest;

#define WORKLOAD_REQUEST_NULL ((WorkloadRequest){})

/*
 * 0 with *ret filled, or an HTTP status (400, 404, 405, 413) with
 * *ret_error a static sentence for IoT Edge's {"message": ...} body and
 * nothing allocated. -ENOMEM on allocation failure.
 */
int workload_request_parse(const char *method, const char *path, const char *api_version, const void *body,
                           size_t body_len, WorkloadRequest *ret, const char **ret_error);
void workload_request_deinit(WorkloadRequest *r);

/* {"message": text} as IoT Edge's error body (NULL on ENOMEM). */
char *workload_error_body(const char *text);
