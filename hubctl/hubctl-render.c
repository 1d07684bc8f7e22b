/* hubctl's views of the daemons' control replies: merge and human text */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hubctl/hubctl-format.h"
#include "hubctl/hubctl-render.h"
#include "hubctl/hubctl-table.h"
#include "proto/iothub/iot-identity.h"
#include "proto/util/cleanup.h"

static int bad_field(json_error_t *error, const char *what) {
        if (error)
                snprintf(error->text, sizeof(error->text), "%s", what);
        return -EBADMSG;
}

/* A field that is an integer >= 0 or null; the one place that tells them apart. */
static int nullable_uint(json_t *v, const char *name, bool *ret_set, uint64_t *ret, json_error_t *error) {
        if (json_is_null(v)) {
                *ret_set = false;
                *ret = 0;
                return 0;
        }
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
                if (error)
                        snprintf(error->text, sizeof(error->text), "'%s' is not a timestamp or null", name);
                return -EBADMSG;
        }
        *ret_set = true;
        *ret = (uint64_t) json_integer_value(v);
        return 0;
}

static int nullable_string(json_t *v, const char *name, const char **ret, json_error_t *error) {
        if (json_is_null(v)) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v)) {
                if (error)
                        snprintf(error->text, sizeof(error->text), "'%s' is not a string or null", name);
                return -EBADMSG;
        }
        *ret = json_string_value(v);
        return 0;
}

static char *format_ago(char buf[static FORMAT_TIMESTAMP_MAX + FORMAT_DURATION_MAX + 16], uint64_t ts_ms,
                        uint64_t now_ms, const char *fmt) {
        char ts[FORMAT_TIMESTAMP_MAX], d[FORMAT_DURATION_MAX];

        format_timestamp(ts, ts_ms);
        format_duration(d, now_ms > ts_ms ? (now_ms - ts_ms) / 1000 : 0);
        snprintf(buf, FORMAT_TIMESTAMP_MAX + FORMAT_DURATION_MAX + 16, fmt, ts, d);
        return buf;
}

static int status_hub_store(Table *t, json_t *j, uint64_t now_ms, json_error_t *error) {
        const char *uplink, *overflow, *dir = NULL, *moving_to = NULL, *move_error = NULL;
        json_int_t links_up, links_total, offline_count, connected, messages, bytes, max_bytes, disk_bytes, ttl;
        json_t *offline_since_j;
        bool offline_set;
        uint64_t offline_since;
        char a[FORMAT_BYTES_MAX], b[FORMAT_BYTES_MAX], c[FORMAT_BYTES_MAX], d[FORMAT_DURATION_MAX];
        char ago[FORMAT_TIMESTAMP_MAX + FORMAT_DURATION_MAX + 16];
        int r;

        r = json_unpack_ex(j, error, 0,
                           "{s:s, s:I, s:I, s:o, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:s, s:I, s?s, s?s, s?s}}",
                           "uplink", &uplink,
                           "links_up", &links_up,
                           "links_total", &links_total,
                           "offline_since_ms", &offline_since_j,
                           "offline_count", &offline_count,
                           "connected_devices", &connected,
                           "store",
                           "messages", &messages,
                           "bytes", &bytes,
                           "max_bytes", &max_bytes,
                           "disk_bytes", &disk_bytes,
                           "overflow", &overflow,
                           "ttl_sec", &ttl,
                           "dir", &dir,
                           "moving_to", &moving_to,
                           "move_error", &move_error);
        if (r < 0)
                return -EBADMSG;
        if (links_up < 0 || links_total < 0 || offline_count < 0 || connected < 0 || messages < 0 || bytes < 0 ||
            max_bytes < 0 || disk_bytes < 0 || ttl < 0)
                return bad_field(error, "a count is negative");
        r = nullable_uint(offline_since_j, "offline_since_ms", &offline_set, &offline_since, error);
        if (r < 0)
                return r;

        table_add_cell(t, "Uplink:");
        if (strcmp(uplink, "idle") == 0)
                table_add_cell(t, "idle, no links open");
        else
                table_add_cellf(t, "%s, %jd of %jd links up", uplink, (intmax_t) links_up, (intmax_t) links_total);
        if (offline_set) {
                table_add_cell(t, "Offline since:");
                table_add_cell(t, format_ago(ago, offline_since, now_ms, "%s (for %s)"));
        }
        table_add_cell(t, "Outages:");
        table_add_cellf(t, "%jd", (intmax_t) offline_count);
        table_add_cell(t, "Connected devices:");
        table_add_cellf(t, "%jd", (intmax_t) connected);

        table_add_cell(t, "Store:");
        if (max_bytes > 0)
                table_add_cellf(t, "%jd messages, %s of %s (%.1f%%), %s on disk", (intmax_t) messages,
                                format_bytes(a, (uint64_t) bytes), format_bytes(b, (uint64_t) max_bytes),
                                100.0 * (double) bytes / (double) max_bytes, format_bytes(c, (uint64_t) disk_bytes));
        else
                table_add_cellf(t, "%jd messages, %s, %s on disk", (intmax_t) messages,
                                format_bytes(a, (uint64_t) bytes), format_bytes(c, (uint64_t) disk_bytes));
        table_add_cell(t, "Store policy:");
        table_add_cellf(t, "%s when full, messages expire after %s", overflow, format_duration(d, (uint64_t) ttl));
        if (dir) {
                table_add_cell(t, "Store folder:");
                if (moving_to)
                        table_add_cellf(t, "%s (moving to %s)", dir, moving_to);
                else
                        table_add_cell(t, dir);
        }
        if (move_error) {
                table_add_cell(t, "Store move:");
                table_add_cell(t, move_error);
        }
        return 0;
}

static int status_auth_cache(Table *t, json_t *j, uint64_t now_ms, json_error_t *error) {
        int synced, syncing;
        json_t *last_sync_j, *last_attempt_j, *last_error_j;
        json_int_t identities;
        bool sync_set, attempt_set;
        uint64_t last_sync, last_attempt;
        const char *last_error;
        char ago[FORMAT_TIMESTAMP_MAX + FORMAT_DURATION_MAX + 16];
        int r;

        r = json_unpack_ex(j, error, 0, "{s:b, s:o, s:o, s:o, s:I, s:b}",
                           "synced", &synced,
                           "last_sync_ms", &last_sync_j,
                           "last_attempt_ms", &last_attempt_j,
                           "last_error", &last_error_j,
                           "identities", &identities,
                           "syncing", &syncing);
        if (r < 0)
                return -EBADMSG;
        if (identities < 0)
                return bad_field(error, "'identities' is negative");
        r = nullable_uint(last_sync_j, "last_sync_ms", &sync_set, &last_sync, error);
        if (r >= 0)
                r = nullable_uint(last_attempt_j, "last_attempt_ms", &attempt_set, &last_attempt, error);
        if (r >= 0)
                r = nullable_string(last_error_j, "last_error", &last_error, error);
        if (r < 0)
                return r;

        table_add_cell(t, "Scope:");
        if (synced && sync_set)
                table_add_cellf(t, "%jd identities, synced %s%s", (intmax_t) identities,
                                format_ago(ago, last_sync, now_ms, "%s (%s ago)"), syncing ? ", sync running" : "");
        else
                table_add_cellf(t, "%jd identities, never synced%s", (intmax_t) identities,
                                syncing ? ", sync running" : "");
        if (last_error) {
                table_add_cell(t, "Last sync attempt:");
                if (attempt_set)
                        table_add_cellf(t, "%s failed: '%s'", format_ago(ago, last_attempt, now_ms, "%s (%s ago)"),
                                        last_error);
                else
                        table_add_cellf(t, "failed: '%s'", last_error);
        }
        return 0;
}

int render_status(FILE *f, json_t *hub_store, json_t *auth_cache, uint64_t now_ms, json_error_t *error) {
        static const TableAlign align[] = { TABLE_LEFT, TABLE_LEFT };
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        r = table_new(&t, 2, NULL, align);
        if (r < 0)
                return r;
        if (hub_store) {
                r = status_hub_store(t, hub_store, now_ms, error);
                if (r < 0)
                        return r;
        }
        if (auth_cache) {
                r = status_auth_cache(t, auth_cache, now_ms, error);
                if (r < 0)
                        return r;
        }
        return table_print(t, f);
}

int render_queues(FILE *f, json_t *queues, json_error_t *error) {
        static const char *const header[] = { "ENDPOINT", "PRIO", "MESSAGES", "BYTES", "OLDEST",
                                              "RECEIVED", "DELIVERED", "EXPIRED", "DROPPED", "REJECTED" };
        static const TableAlign align[] = { TABLE_LEFT, TABLE_RIGHT, TABLE_RIGHT, TABLE_RIGHT, TABLE_RIGHT,
                                            TABLE_RIGHT, TABLE_RIGHT, TABLE_RIGHT, TABLE_RIGHT, TABLE_RIGHT };
        _cleanup_(table_freep) Table *t = NULL;
        json_t *list, *q;
        size_t i;
        int r;

        r = json_unpack_ex(queues, error, 0, "{s:o}", "queues", &list);
        if (r < 0)
                return -EBADMSG;
        if (!json_is_array(list))
                return bad_field(error, "'queues' is not an array");

        r = table_new(&t, ELEMENTSOF(header), header, align);
        if (r < 0)
                return r;

        json_array_foreach(list, i, q) {
                const char *endpoint;
                json_int_t prio, messages, bytes, received, delivered, expired, dropped, rejected;
                json_t *oldest;
                char b[FORMAT_BYTES_MAX], d[FORMAT_DURATION_MAX];

                r = json_unpack_ex(q, error, 0, "{s:s, s:I, s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I}",
                                   "endpoint", &endpoint,
                                   "priority", &prio,
                                   "messages", &messages,
                                   "bytes", &bytes,
                                   "oldest_age_sec", &oldest,
                                   "received", &received,
                                   "delivered", &delivered,
                                   "expired", &expired,
                                   "dropped", &dropped,
                                   "rejected", &rejected);
                if (r < 0)
                        return -EBADMSG;
                if (!json_is_null(oldest) && !json_is_number(oldest))
                        return bad_field(error, "'oldest_age_sec' is not a number or null");
                if (bytes < 0)
                        return bad_field(error, "'bytes' is negative");

                table_add_cell(t, endpoint);
                table_add_cellf(t, "%jd", (intmax_t) prio);
                table_add_cellf(t, "%jd", (intmax_t) messages);
                table_add_cell(t, format_bytes(b, (uint64_t) bytes));
                if (json_is_null(oldest))
                        table_add_cell(t, "-");
                else {
                        double age = json_number_value(oldest);
                        table_add_cell(t, format_duration(d, age > 0 ? (uint64_t) age : 0));
                }
                table_add_cellf(t, "%jd", (intmax_t) received);
                table_add_cellf(t, "%jd", (intmax_t) delivered);
                table_add_cellf(t, "%jd", (intmax_t) expired);
                table_add_cellf(t, "%jd", (intmax_t) dropped);
                table_add_cellf(t, "%jd", (intmax_t) rejected);
        }
        return table_print(t, f);
}

/* The merged entry for identity, created with every field unknown. */
static json_t *merged_entry(json_t *by_identity, const char *identity) {
        json_t *e = json_object_get(by_identity, identity);
        _cleanup_free_ char *device = NULL, *module = NULL;

        if (e)
                return e;
        (void) iot_identity_split(identity, &device, &module);
        e = json_pack("{s:s, s:s?, s:s?, s:n, s:n, s:n, s:n, s:n, s:n, s:n, s:n}",
                      "identity", identity, "device_id", device, "module_id", module,
                      "in_scope", "status", "edge", "auth", "connected", "link", "queued", "delivered");
        if (!e || json_object_set_new(by_identity, identity, e) < 0)
                return NULL;
        return e;
}

static int merge_auth(json_t *by_identity, json_t *auth, json_error_t *error) {
        json_t *list, *item;
        size_t i;

        if (json_unpack_ex(auth, error, 0, "{s:o}", "identities", &list) < 0)
                return -EBADMSG;
        if (!json_is_array(list))
                return bad_field(error, "'identities' is not an array");

        json_array_foreach(list, i, item) {
                const char *identity, *status, *kind = NULL;
                json_t *device_id, *module_id, *e;
                int edge;

                /* "auth" is absent from an auth-cache older than X.509 support. */
                if (json_unpack_ex(item, error, 0, "{s:s, s:o, s:o, s:s, s:b, s?s}",
                                   "identity", &identity, "device_id", &device_id, "module_id", &module_id,
                                   "status", &status, "edge", &edge, "auth", &kind) < 0)
                        return -EBADMSG;
                if (!json_is_string(device_id) || !(json_is_string(module_id) || json_is_null(module_id)))
                        return bad_field(error, "'device_id' or 'module_id' has the wrong type");

                e = merged_entry(by_identity, identity);
                if (!e)
                        return -ENOMEM;
                if (json_object_set(e, "device_id", device_id) < 0 ||
                    json_object_set(e, "module_id", module_id) < 0 ||
                    json_object_set_new(e, "in_scope", json_true()) < 0 ||
                    json_object_set_new(e, "status", json_string(status)) < 0 ||
                    json_object_set_new(e, "edge", json_boolean(edge)) < 0 ||
                    json_object_set_new(e, "auth", kind ? json_string(kind) : json_null()) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int merge_store(json_t *by_identity, json_t *store, json_error_t *error) {
        json_t *list, *item;
        size_t i;

        if (json_unpack_ex(store, error, 0, "{s:o}", "devices", &list) < 0)
                return -EBADMSG;
        if (!json_is_array(list))
                return bad_field(error, "'devices' is not an array");

        json_array_foreach(list, i, item) {
                const char *identity, *link;
                json_int_t queued, delivered;
                int connected;
                json_t *e;

                if (json_unpack_ex(item, error, 0, "{s:s, s:b, s:s, s:I, s:I}",
                                   "identity", &identity, "connected", &connected, "link", &link,
                                   "queued", &queued, "delivered", &delivered) < 0)
                        return -EBADMSG;

                e = merged_entry(by_identity, identity);
                if (!e)
                        return -ENOMEM;
                if (json_object_set_new(e, "connected", json_boolean(connected)) < 0 ||
                    json_object_set_new(e, "link", json_string(link)) < 0 ||
                    json_object_set_new(e, "queued", json_integer(queued)) < 0 ||
                    json_object_set_new(e, "delivered", json_integer(delivered)) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

int devices_merge(json_t *store_devices, json_t *auth_devices, json_t **ret, json_error_t *error) {
        json_auto_t *by_identity = json_object(), *list = json_array();
        _cleanup_free_ const char **keys = NULL;
        const char *key;
        json_t *e;
        size_t n = 0;
        int r;

        if (!by_identity || !list)
                return -ENOMEM;
        if (auth_devices) {
                r = merge_auth(by_identity, auth_devices, error);
                if (r < 0)
                        return r;
        }
        if (store_devices) {
                r = merge_store(by_identity, store_devices, error);
                if (r < 0)
                        return r;
        }

        /* Fill what each answering daemon implies about identities the other one reported. */
        json_object_foreach(by_identity, key, e) {
                if (auth_devices && json_is_null(json_object_get(e, "in_scope")))
                        if (json_object_set_new(e, "in_scope", json_false()) < 0 ||
                            json_object_set_new(e, "edge", json_false()) < 0)
                                return -ENOMEM;
                if (store_devices && json_is_null(json_object_get(e, "connected")))
                        if (json_object_set_new(e, "connected", json_false()) < 0 ||
                            json_object_set_new(e, "queued", json_integer(0)) < 0 ||
                            json_object_set_new(e, "delivered", json_integer(0)) < 0)
                                return -ENOMEM;
        }

        keys = calloc(json_object_size(by_identity) + 1, sizeof(*keys));
        if (!keys)
                return -ENOMEM;
        json_object_foreach(by_identity, key, e)
                keys[n++] = key;
        qsort(keys, n, sizeof(*keys), compare_strings);
        for (size_t i = 0; i < n; i++)
                if (json_array_append(list, json_object_get(by_identity, keys[i])) < 0)
                        return -ENOMEM;

        *ret = json_pack("{s:O}", "devices", list);
        return *ret ? 0 : -ENOMEM;
}

int render_devices(FILE *f, json_t *merged, json_error_t *error) {
        static const char *const header[] = { "IDENTITY", "STATUS", "AUTH", "CONNECTED", "LINK", "QUEUED",
                                              "DELIVERED" };
        static const TableAlign align[] = { TABLE_LEFT, TABLE_LEFT, TABLE_LEFT, TABLE_LEFT, TABLE_LEFT, TABLE_RIGHT,
                                            TABLE_RIGHT };
        _cleanup_(table_freep) Table *t = NULL;
        json_t *list, *item;
        size_t i;
        int r;

        if (json_unpack_ex(merged, error, 0, "{s:o}", "devices", &list) < 0)
                return -EBADMSG;
        if (!json_is_array(list))
                return bad_field(error, "'devices' is not an array");

        r = table_new(&t, ELEMENTSOF(header), header, align);
        if (r < 0)
                return r;

        json_array_foreach(list, i, item) {
                const char *identity;
                json_t *in_scope, *status, *edge, *connected, *link, *queued, *delivered, *auth = NULL;

                if (json_unpack_ex(item, error, 0, "{s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s?o}",
                                   "identity", &identity, "in_scope", &in_scope, "status", &status, "edge", &edge,
                                   "connected", &connected, "link", &link, "queued", &queued,
                                   "delivered", &delivered, "auth", &auth) < 0)
                        return -EBADMSG;

                table_add_cell(t, identity);
                if (json_is_null(in_scope))
                        table_add_cell(t, "?");
                else if (!json_is_true(in_scope))
                        table_add_cell(t, "not in scope");
                else
                        table_add_cellf(t, "%s%s", json_is_string(status) ? json_string_value(status) : "?",
                                        json_is_true(edge) ? " (edge)" : "");
                /* IoT Hub's authentication.type: sas, selfSigned or certificateAuthority. */
                table_add_cell(t, json_is_string(auth) ? json_string_value(auth) :
                                  json_is_false(in_scope) ? "-" : "?");

                if (json_is_null(connected)) {
                        /* hub-store did not answer: nothing is known about links and queues. */
                        for (unsigned k = 0; k < 4; k++)
                                table_add_cell(t, "?");
                        continue;
                }
                table_add_cell(t, json_is_true(connected) ? "yes" : "no");
                table_add_cell(t, json_is_string(link) ? json_string_value(link) : "-");
                table_add_cellf(t, "%jd", (intmax_t) json_integer_value(queued));
                table_add_cellf(t, "%jd", (intmax_t) json_integer_value(delivered));
        }
        return table_print(t, f);
}

int render_sync(FILE *f, json_t *sync, json_error_t *error) {
        int started;

        if (json_unpack_ex(sync, error, 0, "{s:b}", "started", &started) < 0)
                return -EBADMSG;
        if (!f)
                return 0;
        fputs(started ? "Scope sync started.\n" : "A scope sync is already running.\n", f);
        return ferror(f) ? -EIO : 0;
}

int render_routes(FILE *f, json_t *routes, json_error_t *error) {
        static const char *const header[] = { "NAME", "PRIO", "TTL", "MATCHED", "ROUTE" };
        static const TableAlign align[] = { TABLE_LEFT, TABLE_RIGHT, TABLE_RIGHT, TABLE_RIGHT, TABLE_LEFT };
        _cleanup_(table_freep) Table *t = NULL;
        const char *source;
        json_int_t ttl, no_route;
        json_t *list, *e;
        size_t i;
        int r;

        r = json_unpack_ex(routes, error, 0, "{s:s, s:I, s:I, s:o}", "source", &source, "ttl_sec", &ttl,
                           "dropped_no_route", &no_route, "routes", &list);
        if (r < 0)
                return -EBADMSG;
        if (!json_is_array(list))
                return bad_field(error, "'routes' is not an array");
        r = table_new(&t, ELEMENTSOF(header), header, align);
        if (r < 0)
                return r;
        json_array_foreach(list, i, e) {
                const char *name, *text;
                json_int_t prio, route_ttl, matched;

                r = json_unpack_ex(e, error, 0, "{s:s, s:s, s:I, s:I, s:I}", "name", &name, "route", &text,
                                   "priority", &prio, "time_to_live_sec", &route_ttl, "matched", &matched);
                if (r < 0)
                        return -EBADMSG;
                table_add_cell(t, name);
                table_add_cellf(t, "%jd", (intmax_t) prio);
                if (route_ttl > 0)
                        table_add_cellf(t, "%jds", (intmax_t) route_ttl);
                else
                        table_add_cell(t, "-");
                table_add_cellf(t, "%jd", (intmax_t) matched);
                table_add_cell(t, text);
        }
        if (!f)
                return 0;
        fprintf(f, "Routes from %s; time to live %jds; %jd message(s) matched no route.\n\n", source, (intmax_t) ttl,
                (intmax_t) no_route);
        return table_print(t, f);
}
