/* IoT Hub twin topics: requests, responses and desired-patch notifications */
#pragma once

#include <stdint.h>

/*
 * The part after "$iothub/" (a device's or the cloud's topic; on the
 * internal bus after "$edgehub/device/" or "$edgehub/cloud/"):
 *   twin/GET/?$rid={rid}        (the "?" and query may be missing: no $rid)
 *   twin/PATCH/properties/reported/?$rid={rid}
 *   twin/res/{status}/?$rid={rid}[&$version={n}]
 *   twin/PATCH/properties/desired/?$version={n}
 * The query is a property bag. A request id is 1..TWIN_RID_MAX characters
 * of [A-Za-z0-9._~:-] (what SDKs send: counters and UUIDs), so replies can
 * echo it without encoding. Parsed once, here (fuzz-twin-patch.c).
 */
#define TWIN_RID_MAX 128u

/* The requests as a client sends them, a $rid to append; after "$iothub/" or a bus prefix. */
#define TWIN_TOPIC_GET_RID "twin/GET/?$rid="
#define TWIN_TOPIC_REPORTED_RID "twin/PATCH/properties/reported/?$rid="

typedef enum TwinTopicKind {
        TWIN_TOPIC_GET,
        TWIN_TOPIC_REPORTED,
        TWIN_TOPIC_RESPONSE,
        TWIN_TOPIC_DESIRED,
        _TWIN_TOPIC_KIND_MAX,
        _TWIN_TOPIC_KIND_INVALID = -22, /* -EINVAL */
} TwinTopicKind;

typedef struct TwinTopic {
        TwinTopicKind kind;
        int status;        /* TWIN_TOPIC_RESPONSE; else 0 */
        char *rid;         /* NULL when absent */
        int64_t version;   /* -1 when absent */
} TwinTopic;

#define TWIN_TOPIC_NULL ((TwinTopic){ .kind = _TWIN_TOPIC_KIND_INVALID, .version = -1 })

/*
 * -EINVAL: not a twin topic, or a malformed query; -EBADMSG: a twin topic
 * whose $rid is malformed (answerable by nobody: log and drop). A request
 * without $rid parses with rid NULL: the caller decides.
 */
int twin_topic_parse(const char *topic, TwinTopic *ret);
void twin_topic_deinit(TwinTopic *t);

/* "$iothub/twin/res/{status}/?$rid={rid}[&$version={v}]" (version < 0: none). */
int twin_topic_format_response(int status, const char *rid, int64_t version, char **ret);
/* "$iothub/twin/PATCH/properties/desired/?$version={v}" */
int twin_topic_format_desired(int64_t version, char **ret);
