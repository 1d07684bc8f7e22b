/* Direct methods: the invocation body, the reply body and the method topics */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/iot-identity.h"
#include "proto/iothub/method-request.h"
#include "proto/iothub/property-bag.h"
#include "proto/util/cleanup.h"
#include "proto/util/number.h"
#include "proto/util/url.h"

static int fail(const char **ret_error, const char *why, int r) {
        if (ret_error)
                *ret_error = why;
        return r;
}

bool method_name_is_valid(const char *name) {
        static const char excluded[] = "$()<>@,;:\\\"/[]?={}";
        size_t n = 0;

        if (!name)
                return false;
        for (const char *c = name; *c; c++, n++) {
                /* Printable US-ASCII without space: 0x21..0x7e. */
                if (*c < 0x21 || *c > 0x7e || strchr(excluded, *c))
                        return false;
                /* '#' and '+' are MQTT wildcards: they can't be in the POST topic a device subscribes to. */
                if (*c == '#' || *c == '+')
                        return false;
        }
        return n >= 1 && n <= METHOD_NAME_MAX;
}

bool method_rid_is_valid(const char *rid) {
        size_t n = 0;

        if (!rid)
                return false;
        for (const char *c = rid; *c; c++, n++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      strchr("._~-", *c)))
                        return false;
        return n >= 1 && n <= METHOD_RID_MAX;
}

/* A timeout member: absent -> def; else an integer in [min, max]. */
static int timeout_get(json_t *v, unsigned min, unsigned max, unsigned def, unsigned *ret) {
        if (!v) {
                *ret = def;
                return 0;
        }
        if (!json_is_integer(v))
                return -EBADMSG;
        json_int_t n = json_integer_value(v);
        if (n < (json_int_t) min || n > (json_int_t) max)
                return -ERANGE;
        *ret = (unsigned) n;
        return 0;
}

int method_request_parse(const void *body, size_t len, MethodRequest *ret, const char **ret_error) {
        json_auto_t *root = NULL;
        json_t *name = NULL, *payload = NULL, *response_timeout = NULL, *connect_timeout = NULL;
        _cleanup_free_ char *name_copy = NULL, *payload_text = NULL;
        unsigned rt, ct;
        json_error_t e;
        int r;

        if (len > METHOD_BODY_MAX)
                return fail(ret_error, "the request body is larger than 128 KiB plus 4 KiB", -E2BIG);
        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e);
        if (!root || !json_is_object(root))
                return fail(ret_error, "the request body is not a JSON object", -EBADMSG);

        /*
         * Not JSON_STRICT: IoT Hub's service API ignores members it does not
         * know, and callers written against it may send some.
         */
        if (json_unpack_ex(root, &e, 0, "{s?o, s?o, s?o, s?o}", "methodName", &name, "payload", &payload,
                           "responseTimeoutInSeconds", &response_timeout, "connectTimeoutInSeconds",
                           &connect_timeout) < 0)
                return fail(ret_error, "the request body is not a JSON object", -EBADMSG);

        if (!name)
                return fail(ret_error, "methodName is required", -EINVAL);
        if (!json_is_string(name))
                return fail(ret_error, "methodName must be a string", -EBADMSG);
        if (!method_name_is_valid(json_string_value(name)))
                return fail(ret_error,
                            "methodName must be 1 to 128 printable US-ASCII characters, none of "
                            "space $ ( ) < > @ , ; : \\ \" / [ ] ? = { } # +",
                            -EINVAL);

        r = timeout_get(response_timeout, METHOD_TIMEOUT_MIN_SEC, METHOD_TIMEOUT_MAX_SEC, METHOD_TIMEOUT_DEFAULT_SEC,
                        &rt);
        if (r == -EBADMSG)
                return fail(ret_error, "responseTimeoutInSeconds must be an integer", r);
        if (r < 0)
                return fail(ret_error, "responseTimeoutInSeconds must be between 5 and 300", r);
        r = timeout_get(connect_timeout, 0, METHOD_CONNECT_TIMEOUT_MAX_SEC, 0, &ct);
        if (r == -EBADMSG)
                return fail(ret_error, "connectTimeoutInSeconds must be an integer", r);
        if (r < 0)
                return fail(ret_error, "connectTimeoutInSeconds must be between 0 and 300", r);

        payload_text = payload ? json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("null");
        if (!payload_text)
                return -ENOMEM;
        size_t payload_len = strlen(payload_text);
        if (payload_len > METHOD_PAYLOAD_MAX)
                return fail(ret_error, "the payload is larger than 128 KiB", -E2BIG);
        name_copy = strdup(json_string_value(name));
        if (!name_copy)
                return -ENOMEM;

        *ret = (MethodRequest){
                .name = TAKE_PTR(name_copy),
                .payload_len = payload_len,
                .payload = TAKE_PTR(payload_text),
                .response_timeout_sec = rt,
                .connect_timeout_sec = ct,
        };
        return 0;
}

void method_request_deinit(MethodRequest *r) {
        free(r->name);
        free(r->payload);
        *r = METHOD_REQUEST_NULL;
}

/* payload as a JSON value: empty -> null. */
static int payload_load(const void *payload, size_t len, json_t **ret) {
        json_t *v;

        if (len > METHOD_PAYLOAD_MAX)
                return -E2BIG;
        if (len == 0)
                v = json_null();
        else
                v = json_loadb(payload, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
        if (!v)
                return -EBADMSG;
        *ret = v;
        return 0;
}

int method_payload_check(const void *payload, size_t len) {
        json_auto_t *v = NULL;

        return payload_load(payload, len, &v);
}

int method_response_format(int status, const void *payload, size_t len, char **ret) {
        json_auto_t *root = NULL;
        json_t *v;
        char *s;
        int r;

        r = payload_load(payload, len, &v);
        if (r < 0)
                return r;
        root = json_pack("{s:i, s:o}", "status", status, "payload", v); /* steals v, even on failure */
        if (!root)
                return -ENOMEM;
        s = json_dumps(root, JSON_COMPACT);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int method_response_parse(const void *body, size_t len, int *ret_status, char **ret_payload) {
        json_auto_t *root = NULL;
        json_t *payload = NULL;
        json_int_t status;
        char *s;

        root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
        if (!root || json_unpack(root, "{s:I, s?o}", "status", &status, "payload", &payload) < 0)
                return -EBADMSG;
        if (status < 0 || status > METHOD_STATUS_MAX)
                return -EBADMSG;
        s = payload ? json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY) : strdup("null");
        if (!s)
                return -ENOMEM;
        *ret_status = (int) status;
        *ret_payload = s;
        return 0;
}

int method_error_format(const char *code, const char *message, char **ret) {
        _cleanup_free_ char *legacy = NULL;
        json_auto_t *root = NULL;
        char *s;

        if (asprintf(&legacy, "ErrorCode:%s;%s", code, message) < 0)
                return -ENOMEM;
        root = json_pack("{s:s, s:s, s:s}", "errorCode", code, "message", message, "Message", legacy);
        if (!root)
                return -EINVAL; /* not UTF-8 */
        s = json_dumps(root, JSON_COMPACT);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int status_parse(const char *s, size_t len, int *ret) {
        uint64_t v;

        if (len == 0 || len > 3 || parse_u64(s, len, &v) < 0)
                return -EINVAL;
        *ret = (int) v;
        return 0;
}

/* The $rid of a query such as "$rid=7&$version=3". */
static int rid_parse(const char *query, char **ret) {
        _cleanup_(property_bag_deinit) PropertyBag bag = {};
        const char *rid;
        char *copy;

        if (property_bag_parse(query, strlen(query), &bag) < 0)
                return -EINVAL;
        rid = property_bag_get(&bag, "$rid");
        if (!method_rid_is_valid(rid))
                return -EINVAL;
        copy = strdup(rid);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

/* Cuts s at each '/' into at most max segments; -EINVAL when there are more. */
static int split_segments(char *s, char **seg, size_t max, size_t *ret_n) {
        size_t n = 0;

        for (char *p = s, *slash;; p = slash + 1) {
                if (n == max)
                        return -EINVAL;
                seg[n++] = p;
                slash = strchr(p, '/');
                if (!slash)
                        break;
                *slash = '\0';
        }
        *ret_n = n;
        return 0;
}

int method_topic_parse(const char *rest, MethodTopic *ret) {
        _cleanup_(method_topic_deinit) MethodTopic t = METHOD_TOPIC_NULL;
        _cleanup_free_ char *path = NULL;
        const char *q;
        char *seg[5];
        size_t n = 0;
        int r;

        if (strncmp(rest, "methods/", 8) != 0)
                return -EINVAL;
        /* Ids may hold '?', names and rids may not: the query starts at the last "/?". */
        q = NULL;
        for (const char *p = strstr(rest, "/?"); p; p = strstr(p + 1, "/?"))
                q = p;
        if (!q)
                return -EINVAL;
        path = strndup(rest, (size_t) (q - rest));
        if (!path)
                return -ENOMEM;
        if (split_segments(path, seg, ELEMENTSOF(seg), &n) < 0)
                return -EINVAL;

        if (n == 3 && strcmp(seg[1], "POST") == 0) {
                if (!method_name_is_valid(seg[2]))
                        return -EINVAL;
                t.kind = METHOD_TOPIC_POST;
                t.name = strdup(seg[2]);
                if (!t.name)
                        return -ENOMEM;
        } else if (n == 3 && strcmp(seg[1], "res") == 0) {
                if (status_parse(seg[2], strlen(seg[2]), &t.status) < 0)
                        return -EINVAL;
                t.kind = METHOD_TOPIC_RES;
        } else if ((n == 3 || n == 4) && strcmp(seg[1], "invoke") == 0) {
                if (!iot_id_is_valid(seg[2]) || (n == 4 && !iot_id_is_valid(seg[3])))
                        return -EINVAL;
                t.kind = METHOD_TOPIC_INVOKE;
                t.device_id = strdup(seg[2]);
                t.module_id = n == 4 ? strdup(seg[3]) : NULL;
                if (!t.device_id || (n == 4 && !t.module_id))
                        return -ENOMEM;
        } else
                return -EINVAL;

        r = rid_parse(q + 2, &t.rid);
        if (r < 0)
                return r;
        *ret = t;
        t = METHOD_TOPIC_NULL;
        return 0;
}

void method_topic_deinit(MethodTopic *t) {
        free(t->name);
        free(t->device_id);
        free(t->module_id);
        free(t->rid);
        *t = METHOD_TOPIC_NULL;
}

int method_target_from_path(const char *path, char **ret) {
        _cleanup_free_ char *copy = strdup(path), *d = NULL, *mod = NULL;
        char *seg[6];
        size_t n = 0;

        if (!copy)
                return -ENOMEM;
        if (copy[0] != '/')
                return -EINVAL;
        if (split_segments(copy + 1, seg, ELEMENTSOF(seg), &n) < 0)
                return -EINVAL;
        bool device = n == 3 && strcmp(seg[2], "methods") == 0;
        bool module = n == 5 && strcmp(seg[2], "modules") == 0 && strcmp(seg[4], "methods") == 0;
        if (strcmp(seg[0], "twins") != 0 || (!device && !module))
                return -EINVAL;
        /* The SDKs percent-encode each id (encodeURIComponent): decode once, here. */
        if (url_decode(seg[1], strlen(seg[1]), &d) < 0 || !iot_id_is_valid(d))
                return -EINVAL;
        if (module && (url_decode(seg[3], strlen(seg[3]), &mod) < 0 || !iot_id_is_valid(mod)))
                return -EINVAL;
        if (module ? asprintf(ret, "%s/%s", d, mod) < 0 : !(*ret = strdup(d)))
                return -ENOMEM;
        return 0;
}

int method_topic_format_post(const char *name, const char *rid, char **ret) {
        if (!method_name_is_valid(name) || !method_rid_is_valid(rid))
                return -EINVAL;
        if (asprintf(ret, "$iothub/methods/POST/%s/?$rid=%s", name, rid) < 0)
                return -ENOMEM;
        return 0;
}

int method_topic_format_res(bool invoke, int status, const char *rid, char **ret) {
        if (status < 0 || status > METHOD_STATUS_MAX || !method_rid_is_valid(rid))
                return -EINVAL;
        if (asprintf(ret, "$iothub/methods/%sres/%d/?$rid=%s", invoke ? "invoke/" : "", status, rid) < 0)
                return -ENOMEM;
        return 0;
}
