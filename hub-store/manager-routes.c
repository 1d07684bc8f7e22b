/* The Manager's routes: which endpoints a stored message goes to, and where routes come from */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "hub-store/manager.h"
#include "proto/iothub/edgehub-desired.h"
#include "proto/iothub/route.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"

/* The last $edgeHub desired properties applied, kept so an offline restart applies them again. */
#define META_EDGEHUB_DESIRED "edgehub-desired"

static RateLimit route_ratelimit = RATELIMIT_INIT(10u * 1000000u, 5u);

/* Replaces the active table; counters start again with it. */
static void manager_routes_install(Manager *m, RouteTable *t, uint64_t ttl_sec, const char *source) {
        uint64_t *matched = calloc(t->n > 0 ? t->n : 1, sizeof(*matched));

        if (!matched) {
                /* Counters are not worth refusing a configuration for. */
                log_warning("Out of memory for route counters; routes still apply");
        }
        route_table_free(m->routes);
        free(m->route_matched);
        m->routes = t;
        m->route_matched = matched;
        m->ttl_sec = ttl_sec ? ttl_sec : m->config->ttl_sec;
        m->link_settings.message_ttl_ms = m->ttl_sec * 1000u;
        snprintf(m->routes_source, sizeof(m->routes_source), "%s", source);
        log_info("Routes from %s: %zu route(s), time to live %" PRIu64 " s", source, t->n, m->ttl_sec);
}

/* Parses and applies the $edgeHub desired properties. -EINVAL with *ret_error when refused (nothing changes). */
static int manager_apply_desired(Manager *m, const char *json, size_t len, char **ret_error) {
        _cleanup_(edgehub_desired_deinit) EdgeHubDesired d = EDGEHUB_DESIRED_NULL;
        _cleanup_(route_table_freep) RouteTable *t = NULL;
        _cleanup_free_ char *error = NULL, *errors = NULL;
        char source[64];
        int r;

        r = edgehub_desired_parse(json, len, &d, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                *ret_error = TAKE_PTR(error);
                return -EINVAL;
        }
        /* A twin without routes keeps the configured ones (edgeHub needs routes; we keep serving). */
        r = route_table_new(d.routes.n > 0 ? &d.routes : &m->config->routes, &t, &errors);
        if (r == -ENOMEM)
                return r;
        if (r != 0) {
                /* All or nothing: a half-applied deployment is harder to reason about than the old one. */
                *ret_error = errors ? TAKE_PTR(errors) : strdup("invalid routes");
                return -EINVAL;
        }
        if (d.version >= 0)
                snprintf(source, sizeof(source), "the $edgeHub twin (version %" PRId64 ")", d.version);
        else
                snprintf(source, sizeof(source), "the $edgeHub twin");
        manager_routes_install(m, TAKE_PTR(t), d.ttl_secs, source);
        return 0;
}

void manager_reply_config_apply(Manager *m, const Frame *req, FrameBuilder *reply) {
        _cleanup_free_ char *json = NULL, *error = NULL;
        int r;

        r = frame_get_string(req, WIRE_JSON, &json);
        if (r < 0) {
                wire_reply_init(reply, WIRE_CONFIG_APPLY_REPLY, EINVAL, "missing desired properties");
                return;
        }
        r = manager_apply_desired(m, json, strlen(json), &error);
        if (r == -EINVAL) {
                log_warning("Desired properties of $edgeHub refused, keeping the running routes: %s", error ? error : "n/a");
                wire_reply_init(reply, WIRE_CONFIG_APPLY_REPLY, EINVAL, error ? error : "refused");
                return;
        }
        if (r < 0) {
                wire_reply_init(reply, WIRE_CONFIG_APPLY_REPLY, -r, NULL);
                return;
        }

        /* Applied: an offline restart must come back to it, not to the file's defaults. */
        r = store_meta_put(m->store, META_EDGEHUB_DESIRED, json, strlen(json));
        if (r < 0)
                log_warning_errno(r, "Failed to keep the applied $edgeHub desired properties, a restart reverts them: %m");
        wire_reply_init(reply, WIRE_CONFIG_APPLY_REPLY, 0, NULL);
}

int manager_routes_setup(Manager *m) {
        _cleanup_(route_table_freep) RouteTable *t = NULL;
        _cleanup_free_ char *errors = NULL, *error = NULL;
        _cleanup_free_ void *saved = NULL;
        size_t len = 0;
        int r;

        r = store_meta_get(m->store, META_EDGEHUB_DESIRED, &saved, &len);
        if (r >= 0) {
                r = manager_apply_desired(m, saved, len, &error);
                if (r >= 0)
                        return 0;
                log_warning("The saved $edgeHub desired properties no longer apply (%s); using the configured routes",
                            error ? error : "n/a");
        }

        /* config.c checked each route already; a bad one is left out with its reason, the rest serve. */
        r = route_table_new(&m->config->routes, &t, &errors);
        if (r < 0)
                return r;
        if (r > 0)
                log_warning("Some configured routes are left out:\n%s", errors ? errors : "n/a");
        manager_routes_install(m, TAKE_PTR(t), 0, "the configuration");
        return 0;
}

void manager_routes_free(Manager *m) {
        m->routes = route_table_free(m->routes);
        free(m->route_matched);
        m->route_matched = NULL;
}

int manager_route_message(Manager *m, const StoreMessage *msg, const RouteMessage *rm, StoreOrigin origin,
                          RouteAppended *ret) {
        const RouteTableEntry *stack[ELEMENTSOF(ret->stack)];
        _cleanup_free_ const RouteTableEntry **heap = NULL;
        const RouteTableEntry **matches = stack;
        size_t n;
        int r;

        *ret = ROUTE_APPENDED_NULL;
        if (!rm) {
                /* The plugin checked the bag; a record that cannot be routed is dropped and counted. */
                m->dropped_no_route++;
                return 0;
        }
        if (m->routes->n > ELEMENTSOF(stack)) {
                heap = calloc(m->routes->n, sizeof(*heap));
                ret->heap = calloc(m->routes->n, sizeof(*ret->heap));
                if (!heap || !ret->heap)
                        return -ENOMEM;
                matches = heap;
        }
        n = route_table_match(m->routes, rm, matches, m->routes->n);
        if (n == 0) {
                m->dropped_no_route++;
                log_ratelimit(&route_ratelimit, LOG_INFO, "Message of '%s' matches no route, dropped (no_route)",
                                   msg->identity);
                return 0;
        }

        for (size_t i = 0; i < n; i++) {
                const RouteTableEntry *e = matches[i];
                size_t index = (size_t) (e - m->routes->entries);
                _cleanup_free_ char *endpoint = NULL;
                const char *to = STORE_ENDPOINT_UPSTREAM;
                StoreStream *st;

                r = 0;
                if (e->route->sink.kind != ROUTE_SINK_UPSTREAM) {
                        r = route_sink_to_string(&e->route->sink, &endpoint);
                        to = endpoint;
                }
                if (r >= 0)
                        r = manager_store_append(m, to, e->priority, e->time_to_live_secs * 1000u, msg, origin, &st);
                /* Stop at the first failure: the sender gets no acknowledgement and sends it again. */
                if (r < 0)
                        return r;
                (ret->heap ? ret->heap : ret->stack)[ret->n++] = st;
                if (m->route_matched)
                        m->route_matched[index]++;
        }
        return 0;
}
