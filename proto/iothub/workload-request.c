/* IoT Edge's workload API: the requests a module's SDK sends, parsed once */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/iot-identity.h"
#include "proto/iothub/workload-request.h"
#include "proto/util/base64.h"
#include "proto/util/cleanup.h"

#define API_VERSION_MAX 32u
#define SIGN_PREFIX "/modules/"

static bool generation_id_is_valid(const char *s, size_t n) {
        if (n == 0 || n > WORKLOAD_GENID_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
                      s[i] == '.' || s[i] == '_' || s[i] == '-'))
                        return false;
        return true;
}

/* An api-version as IoT Edge dates them: YYYY-MM-DD, optionally with a suffix such as "-preview". */
static bool api_version_is_valid(const char *v) {
        size_t n = v ? strlen(v) : 0;

        if (n < 10 || n > API_VERSION_MAX)
                return false;
        for (size_t i = 0; i < 10; i++)
                if (i == 4 || i == 7 ? v[i] != '-' : !(v[i] >= '0' && v[i] <= '9'))
                        return false;
        for (size_t i = 10; i < n; i++)
                if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-'))
                        return false;
        return true;
}

static int fail(const char **ret_error, int status, const char *why) {
        if (ret_error)
                *ret_error = why;
        return status;
}

/* "/modules/{m}/genid/{g}/sign": the two segments, or false. */
static bool sign_path_split(const char *path, const char **m, size_t *m_len, const char **g, size_t *g_len) {
        static const char genid[] = "/genid/", sign[] = "/sign";
        const char *p, *slash;

        if (strncmp(path, SIGN_PREFIX, strlen(SIGN_PREFIX)) != 0)
                return false;
        p = path + strlen(SIGN_PREFIX);
        slash = strchr(p, '/');
        if (!slash || strncmp(slash, genid, strlen(genid)) != 0)
                return false;
        *m = p;
        *m_len = (size_t) (slash - p);
        p = slash + strlen(genid);
        slash = strchr(p, '/');
        if (!slash || strcmp(slash, sign) != 0)
                return false;
        *g = p;
        *g_len = (size_t) (slash - p);
        return true;
}

static int parse_sign_body(const void *body, size_t len, WorkloadRequest *r, const char **ret_error) {
        json_error_t jerr;
        const char *key_id = NULL, *algo = NULL, *data = NULL;

        json_auto_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!doc || !json_is_object(doc))
                return fail(ret_error, 400, "the body is not a JSON object");
        if (json_unpack(doc, "{s:s, s:s, s:s}", "keyId", &key_id, "algo", &algo, "data", &data) < 0)
                return fail(ret_error, 400, "keyId, algo and data are required strings");
        /* A module has one key here, the one the device scope holds for it. */
        if (strcmp(key_id, "primary") != 0)
                return fail(ret_error, 400, "keyId must be 'primary'");
        if (strcmp(algo, "HMACSHA256") != 0)
                return fail(ret_error, 400, "algo must be 'HMACSHA256'");
        size_t n = strlen(data);
        if (n == 0 || n > (WORKLOAD_DATA_MAX + 2) / 3 * 4)
                return fail(ret_error, 400, "data must be 1 to 4096 bytes, base64-encoded");
        int k = base64_decode(data, n, &r->data, &r->data_len);
        if (k == -ENOMEM)
                return -ENOMEM;
        if (k < 0 || r->data_len == 0 || r->data_len > WORKLOAD_DATA_MAX) {
                free(r->data);
                r->data = NULL;
                return fail(ret_error, 400, "data must be 1 to 4096 bytes, base64-encoded");
        }
        return 0;
}

int workload_request_parse(const char *method, const char *path, const char *api_version, const void *body,
                           size_t body_len, WorkloadRequest *ret, const char **ret_error) {
        WorkloadRequest r = WORKLOAD_REQUEST_NULL;
        const char *m = NULL, *g = NULL;
        size_t m_len = 0, g_len = 0;
        int k;

        *ret = WORKLOAD_REQUEST_NULL;
        if (!method || !path)
                return fail(ret_error, 400, "malformed request");
        bool trust = strcmp(path, "/trust-bundle") == 0, sign = !trust && sign_path_split(path, &m, &m_len, &g, &g_len);
        if (!trust && !sign)
                return fail(ret_error, 404, "no such resource: only /trust-bundle and /modules/{m}/genid/{g}/sign");
        if (strcmp(method, trust ? "GET" : "POST") != 0)
                return fail(ret_error, 405, trust ? "/trust-bundle takes GET" : "sign takes POST");
        if (!api_version_is_valid(api_version))
                return fail(ret_error, 400, "api-version is missing or malformed");
        if (trust) {
                if (body_len > 0)
                        return fail(ret_error, 400, "GET /trust-bundle takes no body");
                ret->kind = WORKLOAD_TRUST_BUNDLE;
                return 0;
        }

        if (body_len > WORKLOAD_BODY_MAX)
                return fail(ret_error, 413, "the body is too large");
        r.kind = WORKLOAD_SIGN;
        r.module_id = strndup(m, m_len);
        r.generation_id = strndup(g, g_len);
        if (!r.module_id || !r.generation_id) {
                workload_request_deinit(&r);
                return -ENOMEM;
        }
        if (strlen(r.module_id) != m_len || !iot_id_is_valid(r.module_id)) {
                workload_request_deinit(&r);
                return fail(ret_error, 400, "the module id is not a valid IoT Hub id");
        }
        if (strlen(r.generation_id) != g_len || !generation_id_is_valid(g, g_len)) {
                workload_request_deinit(&r);
                return fail(ret_error, 400, "the generation id is malformed");
        }
        k = parse_sign_body(body ?: "", body_len, &r, ret_error);
        if (k != 0) {
                workload_request_deinit(&r);
                return k;
        }
        *ret = r;
        return 0;
}

void workload_request_deinit(WorkloadRequest *r) {
        free(r->module_id);
        free(r->generation_id);
        if (r->data)
                explicit_bzero(r->data, r->data_len);
        free(r->data);
        *r = WORKLOAD_REQUEST_NULL;
}

char *workload_error_body(const char *text) {
        json_auto_t *o = json_pack("{s:s}", "message", text ?: "");
        return o ? json_dumps(o, JSON_COMPACT) : NULL;
}
