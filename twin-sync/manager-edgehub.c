/* The $edgeHub twin as the hub's live configuration, and what $edgeHub reports back */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/iothub/twin-patch.h"
#include "proto/ipc/client.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"
#include "twin-sync/manager.h"

#define CONFIG_APPLY_TIMEOUT_USEC (2u * 1000u * 1000u)
#define CLIENTS_COALESCE_USEC (1000u * 1000u)

/*
 * Desired routes and storeAndForwardConfiguration go to hub-store, which
 * validates, applies and persists them and says how it went; we report
 * that as lastDesiredVersion/lastDesiredStatus, as edgeHub does. The
 * desired document itself is persisted here too (the twin record), so an
 * offline restart applies it again (manager_on_bus_connected fetches, and a
 * failed fetch falls back to the cache, which lands here).
 */
static int apply_to_hub_store(Manager *m, const json_t *desired, int64_t version, int *ret_code,
                              char **ret_description) {
        _cleanup_(frame_client_deinit) FrameClient c = FRAME_CLIENT_NULL;
        _cleanup_(frame_builder_deinit) FrameBuilder req = FRAME_BUILDER_NULL;
        json_auto_t *doc = json_deep_copy(desired);
        _cleanup_free_ char *text = NULL;
        Frame reply;
        int r;

        /* hub-store takes the desired properties as the twin has them, "$version" included. */
        if (!doc || json_object_set_new(doc, "$version", json_integer(version)) < 0)
                return -ENOMEM;
        text = json_dumps(doc, JSON_COMPACT);
        if (!text)
                return -ENOMEM;
        r = frame_client_init(&c, m->hub_store_socket);
        if (r < 0)
                return r;
        frame_builder_init(&req, WIRE_CONFIG_APPLY_REQUEST);
        frame_builder_add_string(&req, WIRE_JSON, text);
        /* A rare, bounded wait on the loop: hub-store answers from memory after one small write. */
        r = frame_client_call(&c, &req, CONFIG_APPLY_TIMEOUT_USEC, &reply);
        if (r < 0)
                return r;
        if (reply.type != WIRE_CONFIG_APPLY_REPLY)
                return -EBADMSG;
        r = wire_reply_status(&reply);
        if (r == -EBADMSG)
                return r;
        /* edgeHub's codes: 200 applied, 400 refused (the description says why). */
        *ret_code = r == 0 ? 200 : r == -EINVAL ? 400 : 500;
        if (frame_get_string(&reply, WIRE_ERROR, ret_description) < 0)
                *ret_description = strdup(r == 0 ? "" : strerror(-r));
        return 0;
}

static int report(Manager *m, Twin *t, json_t *patch) {
        json_auto_t *reported = NULL;
        _cleanup_free_ char *text = json_dumps(patch, JSON_COMPACT);
        int r;

        if (!text)
                return -ENOMEM;
        r = twin_check_reported(t, patch, &reported);
        if (r < 0)
                return r;
        r = manager_queue_reported(m, t, TAKE_PTR(reported), text, strlen(text));
        if (r < 0)
                return r;
        manager_push(m, t);
        return 0;
}

void manager_edgehub_desired_changed(Manager *m, Twin *t) {
        _cleanup_free_ char *description = NULL;
        int code = 0, r;

        if (t->desired_version == m->applied_version || t->desired_version == 0)
                return;
        /* A twin no deployment has written yet (IoT Hub's new twin holds only "$version"): there is
         * nothing to apply, and handing it on would have hub-store refuse it for lacking
         * schemaVersion. The configured routes stay. */
        if (!json_object_get(t->desired, "schemaVersion") && !json_object_get(t->desired, "routes")) {
                log_info("$edgeHub desired version %" PRIi64 " holds no deployment; keeping the configured routes",
                         t->desired_version);
                m->applied_version = t->desired_version;
                return;
        }
        r = apply_to_hub_store(m, t->desired, t->desired_version, &code, &description);
        if (r < 0) {
                /* hub-store is restarting: the next fetch (link up, or our restart) tries again. */
                log_warning_errno(r, "Cannot hand the $edgeHub configuration (version %" PRIi64 ") to hub-store: %m",
                                  t->desired_version);
                return;
        }
        m->applied_version = t->desired_version;
        log_notice("$edgeHub desired version %" PRIi64 " applied: %d %s", t->desired_version, code,
                   description ? description : "");

        json_auto_t *patch = json_pack("{s:I, s:{s:i, s:s}, s:s}", "lastDesiredVersion",
                                       (json_int_t) t->desired_version, "lastDesiredStatus", "code", code,
                                       "description", description ? description : "", "schemaVersion", "1.0");
        /* Already reported (a restart applying the cached document again): nothing new to say. */
        json_t *last = json_object_get(t->reported, "lastDesiredVersion");
        json_t *status = json_object_get(t->reported, "lastDesiredStatus");
        if (patch && json_is_integer(last) && json_integer_value(last) == t->desired_version &&
            json_equal(status, json_object_get(patch, "lastDesiredStatus")))
                return;
        if (!patch || report(m, t, patch) < 0)
                log_warning("Cannot queue the $edgeHub report of desired version %" PRIi64, t->desired_version);
}

/* Twin property names may not hold '.', '$' or spaces: such client ids cannot be reported. */
static bool reportable(const char *identity) {
        return !strpbrk(identity, ".$ ");
}

static void utc_now(char buf[static 32]) {
        struct timespec ts;
        struct tm tm;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        (void) gmtime_r(&ts.tv_sec, &tm);
        (void) strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Queues {"clients": the first n entries of changes}; -EMSGSIZE when that would not fit in 32 KiB. */
static int report_clients(Manager *m, Twin *eh, json_t *changes, size_t n) {
        json_auto_t *clients = json_object();
        const char *key;
        json_t *value;
        size_t i = 0;

        if (!clients)
                return -ENOMEM;
        json_object_foreach(changes, key, value) {
                if (i++ == n)
                        break;
                if (json_object_set(clients, key, value) < 0)
                        return -ENOMEM;
        }
        json_auto_t *patch = json_pack("{s:O}", "clients", clients);
        if (!patch)
                return -ENOMEM;
        return report(m, eh, patch);
}

/*
 * A report with every changed client can pass IoT Hub's 32 KiB limit for the
 * reported document (about 300 clients): then we report the most that fit, as
 * edgeHub does, rather than nothing at all. The clients left out are tried
 * again at the next change.
 */
static void report_clients_that_fit(Manager *m, Twin *eh, json_t *changes) {
        static RateLimit left_out_log = RATELIMIT_INIT(60u * 1000000u, 1u);
        size_t n = json_object_size(changes), lo = 0, hi;
        int r;

        r = report_clients(m, eh, changes, n);
        if (r != -EMSGSIZE) {
                if (r < 0)
                        log_warning_errno(r, "Cannot queue the $edgeHub report of connected clients: %m");
                return;
        }
        /* Binary search for the largest prefix that fits: each try is one size count of the document. */
        hi = n - 1;
        while (lo < hi) {
                size_t mid = lo + (hi - lo + 1) / 2;
                json_auto_t *clients = json_object(), *patch = NULL, *reported = NULL;
                const char *key;
                json_t *value;
                size_t i = 0;

                if (!clients)
                        return;
                json_object_foreach(changes, key, value) {
                        if (i++ == mid)
                                break;
                        (void) json_object_set(clients, key, value);
                }
                patch = json_pack("{s:O}", "clients", clients);
                if (!patch)
                        return;
                r = twin_check_reported(eh, patch, &reported);
                if (r == 0)
                        lo = mid;
                else
                        hi = mid - 1;
        }
        log_ratelimit_warning(&left_out_log,
                              "The $edgeHub report of connected clients is at IoT Hub's 32 KiB limit: %zu of %zu "
                              "changed client(s) left out",
                              n - lo, n);
        if (lo > 0) {
                r = report_clients(m, eh, changes, lo);
                if (r < 0)
                        log_warning_errno(r, "Cannot queue the $edgeHub report of connected clients: %m");
        }
}

static int on_clients_flush(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        Twin *eh = manager_twin(m, m->edgehub_identity);
        json_auto_t *changes = json_object();
        char now[32];

        m->clients_defer = sd_event_source_disable_unref(m->clients_defer);
        if (!eh || !changes)
                return 0;
        utc_now(now);
        json_t *reported_clients = json_object_get(eh->reported, "clients");
        for (size_t i = 0; i < key_map_size(&m->twins); i++) {
                Twin *t = key_map_value_at(&m->twins, i);
                if (!t->heard_presence || t == eh || !reportable(t->identity))
                        continue;
                const char *status = t->connected ? "Connected" : "Disconnected";
                json_t *was = json_object_get(json_object_get(reported_clients, t->identity), "status");
                if (json_is_string(was) && strcmp(json_string_value(was), status) == 0)
                        continue;
                json_t *c = json_pack("{s:s, s:s}", "status", status,
                                      t->connected ? "lastConnectedTimeUtc" : "lastDisconnectedTimeUtc", now);
                if (!c || json_object_set_new(changes, t->identity, c) < 0)
                        return 0;
        }
        if (json_object_size(changes) > 0)
                report_clients_that_fit(m, eh, changes);
        return 0;
}

void manager_edgehub_clients_changed(Manager *m) {
        /* Coalesce a burst of connects (a reconnect storm) into one reported patch. */
        if (m->clients_defer)
                return;
        if (sd_event_add_time_relative(m->event, &m->clients_defer, CLOCK_MONOTONIC, CLIENTS_COALESCE_USEC, 0,
                                       on_clients_flush, m) < 0)
                log_warning("Cannot schedule the $edgeHub clients report, ignoring");
}
