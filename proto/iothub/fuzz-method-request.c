/* Fuzz target: direct method bodies, device answers and method topics */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/iot-identity.h"
#include "proto/iothub/method-request.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): the invariants must hold in -DNDEBUG builds too. */
static void check_request(const uint8_t *data, size_t size) {
        MethodRequest r = METHOD_REQUEST_NULL;
        _cleanup_free_ char *reply = NULL, *payload = NULL;
        const char *error = NULL;
        int status;

        if (method_request_parse(data, size, &r, &error) < 0) {
                if (!error || r.name)
                        abort();
                return;
        }
        if (!method_name_is_valid(r.name) || r.payload_len != strlen(r.payload) ||
            r.payload_len > METHOD_PAYLOAD_MAX || r.response_timeout_sec < METHOD_TIMEOUT_MIN_SEC ||
            r.response_timeout_sec > METHOD_TIMEOUT_MAX_SEC || r.connect_timeout_sec > METHOD_CONNECT_TIMEOUT_MAX_SEC)
                abort();
        /* The payload we forward is JSON, and wraps into a reply that parses back to itself. */
        if (method_payload_check(r.payload, r.payload_len) < 0)
                abort();
        if (method_response_format(200, r.payload, r.payload_len, &reply) < 0)
                abort();
        if (method_response_parse(reply, strlen(reply), &status, &payload) < 0 || status != 200 ||
            strcmp(payload, r.payload) != 0)
                abort();
        method_request_deinit(&r);
}

static void check_topic(const uint8_t *data, size_t size) {
        _cleanup_free_ char *rest = strndup((const char *) data, size), *again = NULL;
        MethodTopic t = METHOD_TOPIC_NULL;

        if (!rest || method_topic_parse(rest, &t) < 0)
                return;
        if (!method_rid_is_valid(t.rid))
                abort();
        switch (t.kind) {
        case METHOD_TOPIC_POST:
                if (!method_name_is_valid(t.name) || method_topic_format_post(t.name, t.rid, &again) < 0)
                        abort();
                break;
        case METHOD_TOPIC_RES:
                if (t.status < 0 || t.status > METHOD_STATUS_MAX ||
                    method_topic_format_res(false, t.status, t.rid, &again) < 0)
                        abort();
                break;
        case METHOD_TOPIC_INVOKE:
                if (!iot_id_is_valid(t.device_id) || (t.module_id && !iot_id_is_valid(t.module_id)))
                        abort();
                break;
        default:
                abort();
        }
        method_topic_deinit(&t);
}

static void check_path(const uint8_t *data, size_t size) {
        _cleanup_free_ char *path = strndup((const char *) data, size), *target = NULL, *d = NULL, *m = NULL;

        if (!path || method_target_from_path(path, &target) < 0)
                return;
        if (iot_identity_split(target, &d, &m) < 0 || !iot_id_is_valid(d) || (m && !iot_id_is_valid(m)))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        log_set_max_level(LOG_CRIT);
        if (size > METHOD_BODY_MAX + 16)
                return 0;

        check_request(data, size);
        (void) method_payload_check(data, size);
        check_topic(data, size);
        check_path(data, size);
        return 0;
}
