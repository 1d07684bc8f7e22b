/* Direct methods: the invocation body, the reply body and the method topics */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * The invocation body is IoT Hub's (and the Azure module SDKs' for the
 * gateway): {"methodName": s, "payload": <any JSON>, "responseTimeoutInSeconds": n,
 * "connectTimeoutInSeconds": n}. The reply is {"status": n, "payload": <JSON>}.
 * Topics, after "$iothub/" (or the bus prefixes "$edgehub/device/" and
 * "$edgehub/cloud/"):
 *   methods/POST/{name}/?$rid=R            a call, to the device
 *   methods/res/{status}/?$rid=R           the device's answer (payload JSON or empty)
 *   methods/invoke/{d}[/{m}]/?$rid=R       a local client calls d or d/m (our MQTT form)
 *   methods/invoke/res/{status}/?$rid=R    its answer, body as the HTTP reply
 * Everything here parses untrusted bytes (fuzz-method-request.c).
 */

/* IoT Hub: "US-ASCII printable alphanumerics, except $ ( ) < > @ , ; : \ " / [ ] ? = { } SP HT".
 * It names no length limit; 128 matches its ids and keeps a topic short. */
#define METHOD_NAME_MAX 128u
/* IoT Hub: "a JSON document up to 128 KB", for requests and responses alike. */
#define METHOD_PAYLOAD_MAX (128u * 1024u)
/* The whole body: the payload plus the other members and some whitespace. */
#define METHOD_BODY_MAX (METHOD_PAYLOAD_MAX + 4096u)
#define METHOD_TIMEOUT_MIN_SEC 5u
#define METHOD_TIMEOUT_MAX_SEC 300u
#define METHOD_TIMEOUT_DEFAULT_SEC 30u
#define METHOD_CONNECT_TIMEOUT_MAX_SEC 300u
/* Request ids we accept and echo: 1..64 of [A-Za-z0-9._~-] (the SDKs send numbers or UUIDs). */
#define METHOD_RID_MAX 64u
/* A status on a response topic: 0..999. */
#define METHOD_STATUS_MAX 999

typedef struct MethodRequest {
        char *name;
        char *payload;              /* "payload" as compact JSON text; "null" when absent */
        size_t payload_len;
        unsigned response_timeout_sec;
        unsigned connect_timeout_sec;
} MethodRequest;

#define METHOD_REQUEST_NULL ((MethodRequest){})

/*
 * -EBADMSG not a JSON object or a member of the wrong type; -EINVAL a bad or
 * missing methodName; -ERANGE a timeout out of range; -E2BIG body or payload
 * too large. On failure *ret_error (if not NULL) is a static sentence for the
 * caller to return; nothing is allocated.
 */
int method_request_parse(const void *body, size_t len, MethodRequest *ret, const char **ret_error);
void method_request_deinit(MethodRequest *r);

bool method_name_is_valid(const char *name);
bool method_rid_is_valid(const char *rid);

/*
 * A device's answer payload: empty or one JSON value of at most
 * METHOD_PAYLOAD_MAX bytes. 0, -EBADMSG not JSON, -E2BIG.
 */
int method_payload_check(const void *payload, size_t len);

/* {"status":status,"payload":payload} with payload JSON text (empty -> null). -EBADMSG, -E2BIG as above. */
int method_response_format(int status, const void *payload, size_t len, char **ret);
/* Parses such a reply (from hubctl's point of view): *ret_payload is compact JSON text. -EBADMSG. */
int method_response_parse(const void *body, size_t len, int *ret_status, char **ret_payload);

/*
 * An error reply: {"errorCode": code, "message": text, "Message": "ErrorCode:code;text"}.
 * "Message" is IoT Hub's error shape, which the Azure SDKs turn into err.message.
 */
int method_error_format(const char *code, const char *message, char **ret);

typedef enum MethodTopicKind {
        METHOD_TOPIC_POST,        /* name, rid */
        METHOD_TOPIC_RES,         /* status, rid */
        METHOD_TOPIC_INVOKE,      /* device_id, module_id (or NULL), rid */
        _METHOD_TOPIC_KIND_MAX,
        _METHOD_TOPIC_KIND_INVALID = -22, /* -EINVAL */
} MethodTopicKind;

typedef struct MethodTopic {
        MethodTopicKind kind;
        char *name;
        char *device_id;
        char *module_id;
        int status;
        char *rid;
} MethodTopic;

#define METHOD_TOPIC_NULL ((MethodTopic){ .kind = _METHOD_TOPIC_KIND_INVALID })

/*
 * rest: the topic after "$iothub/" (starts with "methods/"), as a device or
 * the cloud sends it. "methods/invoke/res/..." is never parsed as an answer:
 * only we send those, and from a device it is an invocation of device "res".
 * -EINVAL if malformed.
 */
int method_topic_parse(const char *rest, MethodTopic *ret);
void method_topic_deinit(MethodTopic *t);

/*
 * The HTTP path of a call through the gateway, without its query:
 * "/twins/{d}/methods" or "/twins/{d}/modules/{m}/methods", ids
 * percent-encoded -> "d" or "d/m". -EINVAL for any other path or a bad id.
 */
int method_target_from_path(const char *path, char **ret);

/* "$iothub/methods/POST/{name}/?$rid={rid}"; -EINVAL for a bad name or rid. */
int method_topic_format_post(const char *name, const char *rid, char **ret);
/* "$iothub/methods/res/{status}/?$rid={rid}" (invoke = false) or ".../methods/invoke/res/..." */
int method_topic_format_res(bool invoke, int status, const char *rid, char **ret);
