/* Fuzz target: workload API requests (method, path, api-version and body, as a module sends them) */
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/iot-identity.h"
#include "proto/iothub/workload-request.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input: METHOD \n PATH \n API-VERSION \n BODY (an empty version line stands for none). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = NULL;
        char *fields[3] = {};
        WorkloadRequest r;
        const char *error = NULL;

        log_set_max_level(LOG_CRIT);
        if (size > WORKLOAD_BODY_MAX + 1024)
                return 0;
        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';

        char *p = text;
        for (size_t i = 0; i < 3; i++) {
                char *nl = memchr(p, '\n', size - (size_t) (p - text));
                if (!nl)
                        return 0;
                *nl = '\0';
                fields[i] = p;
                p = nl + 1;
        }
        size_t body_len = size - (size_t) (p - text);

        int k = workload_request_parse(fields[0], fields[1], *fields[2] ? fields[2] : NULL, p, body_len, &r, &error);
        if (k != 0) {
                /* A refusal is a 4xx with a reason and nothing to sign. */
                if ((k != -12 && (k < 400 || k > 499 || !error)) || r.module_id || r.data)
                        abort();
                return 0;
        }
        if (r.kind == WORKLOAD_SIGN) {
                if (!iot_id_is_valid(r.module_id) || !r.generation_id || !*r.generation_id ||
                    strlen(r.generation_id) > WORKLOAD_GENID_MAX || !r.data || r.data_len == 0 ||
                    r.data_len > WORKLOAD_DATA_MAX || strcmp(fields[0], "POST") != 0)
                        abort();
        } else if (r.kind != WORKLOAD_TRUST_BUNDLE || r.module_id || r.data || strcmp(fields[0], "GET") != 0)
                abort();
        workload_request_deinit(&r);
        return 0;
}
