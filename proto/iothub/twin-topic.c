/* IoT Hub twin topics: requests, responses and desired-patch notifications */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/property-bag.h"
#include "proto/iothub/twin-topic.h"
#include "proto/util/cleanup.h"
#include "proto/util/number.h"

static bool rid_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > TWIN_RID_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("._~:-", *p)))
                        return false;
        return true;
}

/* "{path}?{query}" or just "{path}" (no query), the query in *ret_query. */
static bool take_path(const char *topic, const char *path, const char **ret_query) {
        size_t n = strlen(path);

        if (strncmp(topic, path, n) != 0 || (topic[n] != '?' && topic[n] != '\0'))
                return false;
        *ret_query = topic[n] ? topic + n + 1 : topic + n;
        return true;
}

static int parse_version(const char *s, int64_t *ret) {
        uint64_t v;

        if (parse_u64(s, strlen(s), &v) < 0 || v > INT64_MAX)
                return -EINVAL;
        *ret = (int64_t) v;
        return 0;
}

int twin_topic_parse(const char *topic, TwinTopic *ret) {
        TwinTopic t = TWIN_TOPIC_NULL;
        PropertyBag b = {};
        const char *query = NULL;
        int r;

        if (take_path(topic, "twin/GET/", &query))
                t.kind = TWIN_TOPIC_GET;
        else if (take_path(topic, "twin/PATCH/properties/reported/", &query))
                t.kind = TWIN_TOPIC_REPORTED;
        else if (take_path(topic, "twin/PATCH/properties/desired/", &query))
                t.kind = TWIN_TOPIC_DESIRED;
        else if (strncmp(topic, "twin/res/", 9) == 0) {
                const char *p = topic + 9;
                size_t digits = strspn(p, "0123456789");
                if (digits == 0 || digits > 3 || p[digits] != '/' || (p[digits + 1] != '?' && p[digits + 1] != '\0'))
                        return -EINVAL;
                t.kind = TWIN_TOPIC_RESPONSE;
                t.status = atoi(p);
                query = p[digits + 1] ? p + digits + 2 : p + digits + 1;
        } else
                return -EINVAL;

        r = property_bag_parse(query, strlen(query), &b);
        if (r < 0)
                return -EINVAL;

        const char *rid = property_bag_get(&b, "$rid");
        const char *version = property_bag_get(&b, "$version");
        if (rid && !rid_is_valid(rid)) {
                property_bag_deinit(&b);
                return -EBADMSG;
        }
        if (version && parse_version(version, &t.version) < 0) {
                property_bag_deinit(&b);
                return -EINVAL;
        }
        if (t.kind == TWIN_TOPIC_DESIRED && t.version < 0) {
                property_bag_deinit(&b);
                return -EINVAL;
        }
        if (rid) {
                t.rid = strdup(rid);
                if (!t.rid) {
                        property_bag_deinit(&b);
                        return -ENOMEM;
                }
        }
        property_bag_deinit(&b);
        *ret = t;
        return 0;
}

void twin_topic_deinit(TwinTopic *t) {
        free(t->rid);
        *t = TWIN_TOPIC_NULL;
}

int twin_topic_format_response(int status, const char *rid, int64_t version, char **ret) {
        char *s;
        int r;

        if (!rid || !rid_is_valid(rid) || status < 100 || status > 999)
                return -EINVAL;
        if (version >= 0)
                r = asprintf(&s, "$iothub/twin/res/%d/?$rid=%s&$version=%" PRIi64, status, rid, version);
        else
                r = asprintf(&s, "$iothub/twin/res/%d/?$rid=%s", status, rid);
        if (r < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int twin_topic_format_desired(int64_t version, char **ret) {
        char *s;

        if (version < 0)
                return -EINVAL;
        if (asprintf(&s, "$iothub/twin/PATCH/properties/desired/?$version=%" PRIi64, version) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}
