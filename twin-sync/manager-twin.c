/* The twin flows: GET, reported patches up, desired patches down, reconcile on reconnect */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/twin-patch.h"
#include "proto/runtime/disk-reserve.h"
#include "proto/runtime/log.h"
#include "proto/util/backoff.h"
#include "proto/util/cleanup.h"
#include "proto/util/ratelimit.h"
#include "twin-sync/manager.h"
#include "twin-sync/twin-store.h"

static char *mfree(char *p) {
        free(p);
        return NULL;
}

static json_t *json_decref_null(json_t *j) {
        json_decref(j);
        return NULL;
}

/*
 * Online: this identity's link is up, or some link is, or we have not heard
 * of any link yet (then the cloud gets a shorter time to answer). Offline
 * (links known and all down): the cache answers at once.
 */
bool manager_online(Manager *m, const Twin *t) {
        return t->link == BUS_LINK_UP || m->links_up > 0 || !m->heard_link;
}

int manager_reply(Manager *m, const char *identity, int status, const char *rid, int64_t version, const char *body) {
        _cleanup_free_ char *topic = NULL;
        int r;

        r = twin_topic_format_response(status, rid, version, &topic);
        if (r < 0)
                return r;
        r = bus_publish(m->bus, BUS_TOPIC_DELIVER, body, body ? strlen(body) : 0, identity, topic, NULL, NULL);
        if (r < 0)
                log_warning_errno(r, "Cannot answer '%s' (request %s), it will time out: %m", identity, rid);
        return r;
}

/* done (may be NULL) hears the broker's PUBACK reason, with the twin as userdata. */
static int upstream(Manager *m, Twin *t, const char *topic, const void *payload, size_t len, BusPublishDone done) {
        int r = bus_publish(m->bus, BUS_TOPIC_UPSTREAM, payload, len, t->identity, topic, done, done ? t : NULL);
        if (r < 0)
                log_debug_errno(r, "Cannot send '%s' upstream for '%s' now: %m", topic, t->identity);
        return r;
}

/* The device now has the whole desired state (a GET answer). */
static void mark_seen(Manager *m, Twin *t) {
        if (t->seen_version == t->desired_version && json_equal(t->seen, t->desired))
                return;
        json_t *copy = json_deep_copy(t->desired);
        if (!copy)
                return;
        json_decref(t->seen);
        t->seen = copy;
        t->seen_version = t->desired_version;
        (void) manager_save(m, t, NULL, 0);
}

static void answer_from_cache(Manager *m, Twin *t, const char *rid) {
        json_auto_t *view = twin_view(t);
        _cleanup_free_ char *body = view ? json_dumps(view, JSON_COMPACT) : NULL;

        if (!body) {
                (void) manager_reply(m, t->identity, 500, rid, -1, NULL);
                return;
        }
        if (manager_reply(m, t->identity, 200, rid, -1, body) >= 0)
                mark_seen(m, t);
}

static void answer_waiters(Manager *m, Twin *t) {
        while (t->waiters) {
                GetWaiter *w = t->waiters;
                t->waiters = w->next;
                answer_from_cache(m, t, w->rid);
                free(w);
        }
}

static void fetch_done(Manager *m, Twin *t, bool fresh) {
        free(t->late_fetch_rid);
        /* Timed out: hub-store may still send it once the link is up; that answer is still good. */
        t->late_fetch_rid = fresh ? mfree(t->fetch_rid) : t->fetch_rid;
        t->fetch_rid = NULL;
        t->fetch_timer = sd_event_source_disable_unref(t->fetch_timer);
        t->fetch_resend = sd_event_source_disable_unref(t->fetch_resend);
        answer_waiters(m, t);
        /* Fresh, or the cached document after a restart: hub-store gets what it has not had from us. */
        if (strcmp(t->identity, m->edgehub_identity) == 0)
                manager_edgehub_desired_changed(m, t);
        /* Fresh or not: a device that (re)subscribed gets what it has not seen of what we know. */
        manager_deliver(m, t);
        manager_push(m, t);
        if (t->refetch) {
                t->refetch = false;
                manager_fetch(m, t);
        }
}

typedef struct TimerContext {
        Manager *manager;
        Twin *twin;
} TimerContext;

static int on_fetch_expired(sd_event_source *s, uint64_t usec, void *userdata) {
        TimerContext *c = userdata;
        Manager *m = c->manager;
        Twin *t = c->twin;

        log_debug("No twin from the cloud for '%s' in time: answering from the cache", t->identity);
        /* With no link known up, silence means offline: answer the next GETs from the cache at once. */
        if (m->links_up == 0)
                m->heard_link = true;
        fetch_done(m, t, false);
        return 0;
}

static int arm_timer(Manager *m, Twin *t, sd_event_source **slot, uint64_t usec,
                     sd_event_time_handler_t handler, const char *description) {
        TimerContext *c;
        int r;

        *slot = sd_event_source_disable_unref(*slot);
        c = malloc(sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (TimerContext){ .manager = m, .twin = t };
        r = sd_event_add_time_relative(m->event, slot, CLOCK_MONOTONIC, usec, 1000, handler, c);
        if (r < 0) {
                free(c);
                return r;
        }
        (void) sd_event_source_set_destroy_callback(*slot, free);
        (void) sd_event_source_set_description(*slot, description);
        return 0;
}

static void on_fetch_published(Bus *b, int reason, void *userdata);

/* The GET of the fetch in flight, to hub-store; 0 or, when it could not be sent, negative. */
static int fetch_send(Manager *m, Twin *t) {
        _cleanup_free_ char *topic = NULL;

        if (asprintf(&topic, "$iothub/" TWIN_TOPIC_GET_RID "%s", t->fetch_rid) < 0)
                return -ENOMEM;
        return upstream(m, t, topic, "", 0, on_fetch_published);
}

static int on_fetch_resend(sd_event_source *s, uint64_t usec, void *userdata) {
        TimerContext *c = userdata;
        Manager *m = c->manager;
        Twin *t = c->twin;

        /* Frees c: read it first. */
        t->fetch_resend = sd_event_source_disable_unref(t->fetch_resend);
        if (t->fetch_rid)
                (void) fetch_send(m, t);
        return 0;
}

/*
 * Nobody read the GET: hub-store has not joined the bus yet (the daemons join
 * the broker in any order). Sent again shortly, within the fetch's deadline,
 * so a device's first GET after a start gets the cloud's twin, not the cache.
 */
static void on_fetch_published(Bus *b, int reason, void *userdata) {
        Twin *t = userdata;
        Manager *m = t->manager;

        if (reason != BUS_REASON_NO_SUBSCRIBERS || !t->fetch_rid || t->fetch_resend)
                return;
        log_debug("No reader took the twin GET of '%s' yet: sending it again", t->identity);
        if (arm_timer(m, t, &t->fetch_resend, TWIN_FETCH_RESEND_USEC, on_fetch_resend, "twin-fetch-resend") < 0)
                log_debug("Cannot schedule the twin GET of '%s' again; the cache answers at the deadline", t->identity);
}

void manager_fetch(Manager *m, Twin *t) {
        if (t->fetch_rid)
                return; /* one in flight: its answer serves everyone waiting */
        t->fetch_rid = bus_request_id_next(&m->rids);
        if (!t->fetch_rid) {
                fetch_done(m, t, false);
                return;
        }
        if (fetch_send(m, t) < 0 ||
            arm_timer(m, t, &t->fetch_timer,
                      t->link == BUS_LINK_UP ? TWIN_FETCH_TIMEOUT_USEC : TWIN_FETCH_TIMEOUT_UNSURE_USEC,
                      on_fetch_expired, "twin-fetch") < 0)
                fetch_done(m, t, false);
}

void manager_device_get(Manager *m, Twin *t, const char *rid) {
        if (!manager_online(m, t)) {
                answer_from_cache(m, t, rid);
                return;
        }
        if (twin_add_waiter(t, rid) < 0) {
                answer_from_cache(m, t, rid);
                return;
        }
        manager_fetch(m, t);
}

void manager_device_reported(Manager *m, Twin *t, const char *rid, const void *payload, size_t len) {
        json_auto_t *patch = NULL, *reported = NULL;
        const char *why = NULL;
        int r;

        r = twin_patch_parse(payload, len, &patch, &why);
        if (r >= 0) {
                r = twin_check_reported(t, patch, &reported);
                if (r == -EMSGSIZE)
                        why = "reported properties would exceed 32 KiB";
        }
        if (r < 0) {
                /* The device stays connected: IoT Hub answers 400 and keeps the session. */
                log_ratelimit_warning(&m->bad_input_log, "Refusing a reported patch from '%s' (request %s): %s",
                                      t->identity, rid, why ? why : "out of memory");
                (void) manager_reply(m, t->identity, r == -ENOMEM ? 500 : 400, rid, -1, NULL);
                return;
        }

        r = manager_queue_reported(m, t, TAKE_PTR(reported), payload, len);
        if (r == -EDQUOT) {
                /* IoT Hub's answer to a device it throttles; the device stays connected and retries later. */
                log_ratelimit_warning(&m->bad_input_log,
                                      "Refusing a reported patch from '%s' (request %s): %" PRIu64
                                      " bytes already wait for the cloud (storage.twin_queue_max_bytes)",
                                      t->identity, rid, t->pending_bytes);
                (void) manager_reply(m, t->identity, 429, rid, -1, NULL);
                return;
        }
        if (r < 0) {
                (void) manager_reply(m, t->identity, 503, rid, -1, NULL);
                return;
        }
        (void) manager_reply(m, t->identity, 204, rid, t->reported_version, NULL);
        manager_push(m, t);
}

/*
 * Pending patches are merged into the newest queued one unless that one is
 * in flight: what reaches the cloud is the same (twin_patch_compose()), and
 * the queue of an identity stays about two entries however long it is
 * offline. The merged patch holds every key touched, deletions included,
 * so a device that keeps touching new keys still grows it: that is what
 * storage.twin_queue_max_bytes bounds. *ret_merged: the text and the seq it
 * replaces, or NULL when the patch is queued on its own.
 */
static int merge_with_tail(Manager *m, Twin *t, const void *patch, size_t len, char **ret_merged,
                           uint64_t *ret_seq, size_t *ret_tail_len) {
        _cleanup_free_ void *tail = NULL;
        json_auto_t *tj = NULL, *pj = NULL;
        json_error_t e;
        uint64_t seq;
        size_t tail_len;
        int r;

        *ret_merged = NULL;
        if (t->n_pending == 0)
                return 0;
        r = twin_store_tail(m->kv, t, &seq, &tail, &tail_len);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (t->push_rid && seq == t->push_seq)
                return 0; /* the cloud may be applying it: never change it under its feet */
        tj = json_loadb(tail, tail_len, JSON_REJECT_DUPLICATES, &e);
        pj = json_loadb(patch, len, JSON_REJECT_DUPLICATES, &e);
        if (!tj || !pj)
                return 0; /* queued before the checks of today: leave it alone */
        r = twin_patch_compose(tj, pj);
        if (r == -EXDEV || r == -EINVAL)
                return 0;
        if (r < 0)
                return r;
        *ret_merged = json_dumps(tj, JSON_COMPACT);
        if (!*ret_merged)
                return -ENOMEM;
        *ret_seq = seq;
        *ret_tail_len = tail_len;
        return 0;
}

int manager_queue_reported(Manager *m, Twin *t, json_t *reported, const void *patch, size_t len) {
        _cleanup_free_ char *merged = NULL;
        uint64_t seq = 0, pending;
        size_t tail_len = 0;
        int r;

        /* The message store's floor, on the same file system: twins must not starve telemetry. */
        r = disk_reserve_check(m->config->storage_dir, len);
        if (r < 0) {
                json_decref(reported);
                log_ratelimit_warning(&m->bad_input_log, "Refusing a reported patch from '%s': the disk is nearly full",
                                      t->identity);
                return r;
        }
        r = merge_with_tail(m, t, patch, len, &merged, &seq, &tail_len);
        if (r < 0) {
                json_decref(reported);
                return r;
        }
        pending = merged ? t->pending_bytes - tail_len + strlen(merged) : t->pending_bytes + len;
        if (pending > m->config->twin_queue_max_bytes) {
                json_decref(reported);
                return -EDQUOT;
        }

        /* Apply, then write record and queue entry in one batch; only then may anyone be told. */
        json_t *old = t->reported;
        t->reported = reported;
        t->reported_version++;
        if (merged)
                r = twin_store_replace(m->kv, t, seq, merged, strlen(merged));
        else {
                t->next_seq++;
                r = manager_save(m, t, patch, len);
        }
        if (r < 0) {
                json_decref(t->reported);
                t->reported = old;
                t->reported_version--;
                if (!merged)
                        t->next_seq--;
                return r;
        }
        json_decref(old);
        t->pending_bytes = pending;
        if (!merged)
                t->n_pending++;
        return 0;
}

static int on_push_expired(sd_event_source *s, uint64_t usec, void *userdata) {
        TimerContext *c = userdata;
        Manager *m = c->manager;
        Twin *t = c->twin;

        if (t->push_rid) {
                log_debug("No answer from the cloud to a reported patch of '%s': retrying", t->identity);
                t->push_rid = mfree(t->push_rid);
        }
        t->push_timer = sd_event_source_disable_unref(t->push_timer);
        manager_push(m, t);
        return 0;
}

static void push_retry_later(Manager *m, Twin *t) {
        t->push_backoff_usec = backoff_double(t->push_backoff_usec, 1000u * 1000u, TWIN_PUSH_BACKOFF_MAX_USEC);
        (void) arm_timer(m, t, &t->push_timer, t->push_backoff_usec, on_push_expired, "twin-push-retry");
}

void manager_push(Manager *m, Twin *t) {
        _cleanup_free_ void *patch = NULL;
        _cleanup_free_ char *topic = NULL;
        size_t len;
        uint64_t seq;
        int r;

        /* One in flight per identity keeps them in order; a retry timer pending means "wait". */
        if (t->push_rid || t->push_timer || t->n_pending == 0 || !manager_online(m, t) || !bus_connected(m->bus))
                return;
        r = twin_store_head(m->kv, t, &seq, &patch, &len);
        if (r == -ENOENT) {
                t->n_pending = 0;
                t->pending_bytes = 0;
                return;
        }
        if (r < 0) {
                log_error_errno(r, "Cannot read the reported queue of '%s': %m", t->identity);
                push_retry_later(m, t);
                return;
        }
        t->push_rid = bus_request_id_next(&m->rids);
        if (!t->push_rid || asprintf(&topic, "$iothub/" TWIN_TOPIC_REPORTED_RID "%s", t->push_rid) < 0) {
                topic = NULL;
                t->push_rid = mfree(t->push_rid);
                push_retry_later(m, t);
                return;
        }
        t->push_seq = seq;
        t->push_len = len;
        if (upstream(m, t, topic, patch, len, NULL) < 0) {
                t->push_rid = mfree(t->push_rid);
                push_retry_later(m, t);
                return;
        }
        (void) arm_timer(m, t, &t->push_timer, t->link == BUS_LINK_UP ? TWIN_PUSH_TIMEOUT_USEC : TWIN_PUSH_TIMEOUT_LINK_DOWN_USEC,
                         on_push_expired, "twin-push");
}

static void push_answered(Manager *m, Twin *t, int status, int64_t version) {
        t->push_rid = mfree(t->push_rid);
        t->push_timer = sd_event_source_disable_unref(t->push_timer);

        if (status == 429 || status >= 500) {
                log_info("The cloud answered %d to a reported patch of '%s': retrying later", status, t->identity);
                push_retry_later(m, t);
                return;
        }
        if (status != 200 && status != 204)
                /* It passed our checks but the cloud refuses it: retrying would block the queue forever. */
                log_warning("The cloud refused a reported patch of '%s' with %d: dropping it", t->identity, status);
        int r = twin_store_ack(m->kv, t, t->push_seq);
        if (r < 0) {
                log_error_errno(r, "Cannot remove an acknowledged reported patch of '%s': %m", t->identity);
                push_retry_later(m, t);
                return;
        }
        t->push_backoff_usec = 0;
        if (t->n_pending > 0)
                t->n_pending--;
        t->pending_bytes = t->n_pending == 0 || t->pending_bytes < t->push_len ? 0 : t->pending_bytes - t->push_len;
        if (t->n_pending == 0 && version > t->reported_version) {
                t->reported_version = version;
                (void) manager_save(m, t, NULL, 0);
        }
        manager_push(m, t);
}

/* The cloud's full twin: desired replaces ours, reported is the cloud's with our pending patches on top. */
static int apply_full_twin(Manager *m, Twin *t, const void *payload, size_t len) {
        json_error_t e;
        json_auto_t *doc = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &e);
        json_auto_t *desired = NULL, *reported = NULL, *pending = NULL;
        json_t *d, *rp;
        int64_t dv, rv;

        if (!doc || json_unpack(doc, "{s:o, s:o}", "desired", &d, "reported", &rp) < 0 ||
            twin_cloud_properties(d, &desired, &dv) < 0 || twin_cloud_properties(rp, &reported, &rv) < 0)
                return -EBADMSG;

        pending = twin_store_pending(m->kv, t);
        if (!pending)
                return -ENOMEM;
        size_t i;
        json_t *p;
        json_array_foreach(pending, i, p) {
                json_t *patch = json_object_get(p, "patch");
                if (json_is_object(patch))
                        (void) twin_merge(reported, patch);
        }

        json_decref(t->desired);
        t->desired = TAKE_PTR(desired);
        t->desired_version = dv;
        json_decref(t->reported);
        t->reported = TAKE_PTR(reported);
        /* Versions we handed out never go backwards. */
        if (rv > t->reported_version)
                t->reported_version = rv;
        return manager_save(m, t, NULL, 0);
}

void manager_cloud_response(Manager *m, Twin *t, const TwinTopic *tt, const void *payload, size_t len) {
        if (tt->rid && t->push_rid && strcmp(tt->rid, t->push_rid) == 0) {
                push_answered(m, t, tt->status, tt->version);
                return;
        }
        bool late = tt->rid && t->late_fetch_rid && strcmp(tt->rid, t->late_fetch_rid) == 0;
        if (!late && (!tt->rid || !t->fetch_rid || strcmp(tt->rid, t->fetch_rid) != 0)) {
                log_debug("Ignoring an unknown twin answer for '%s'", t->identity);
                return;
        }
        if (late) {
                t->late_fetch_rid = mfree(t->late_fetch_rid);
                if (tt->status != 200 || apply_full_twin(m, t, payload, len) < 0)
                        return;
                if (strcmp(t->identity, m->edgehub_identity) == 0)
                        manager_edgehub_desired_changed(m, t);
                manager_deliver(m, t);
                return;
        }
        if (tt->status != 200) {
                log_info("The cloud answered %d to the twin GET of '%s': answering from the cache", tt->status,
                         t->identity);
                fetch_done(m, t, false);
                return;
        }
        int r = apply_full_twin(m, t, payload, len);
        if (r == -EBADMSG)
                log_ratelimit_warning(&m->bad_input_log, "The cloud sent a malformed twin for '%s': keeping the last good one",
                                      t->identity);
        fetch_done(m, t, r >= 0);
}

void manager_cloud_desired(Manager *m, Twin *t, int64_t version, const void *payload, size_t len) {
        json_error_t e;
        json_auto_t *doc = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &e);
        json_auto_t *patch = doc ? twin_strip_metadata(doc) : NULL;

        if (!patch || twin_properties_check(patch, true, NULL) < 0) {
                log_ratelimit_warning(&m->bad_input_log,
                                      "The cloud sent a malformed desired patch for '%s': keeping the last good state",
                                      t->identity);
                return;
        }
        switch (twin_version_step(t->desired_version, version)) {
        case TWIN_VERSION_NEXT:
                break;
        case TWIN_VERSION_STALE:
                log_debug("Ignoring desired version %" PRIi64 " of '%s': have %" PRIi64, version, t->identity,
                          t->desired_version);
                return;
        default:
                log_info("Desired version %" PRIi64 " of '%s' follows %" PRIi64 ": fetching the full twin", version,
                         t->identity, t->desired_version);
                manager_fetch(m, t);
                return;
        }
        if (twin_merge(t->desired, patch) < 0)
                return;
        t->desired_version = version;
        if (manager_save(m, t, NULL, 0) < 0)
                return;
        if (strcmp(t->identity, m->edgehub_identity) == 0)
                manager_edgehub_desired_changed(m, t);
        manager_deliver(m, t);
}

static void on_delivered(Bus *b, int reason, void *userdata) {
        Twin *t = userdata;
        Manager *m = t->manager;

        t->delivering = false;
        if (reason == BUS_REASON_SUCCESS || reason == BUS_REASON_NO_SUBSCRIBERS) {
                json_decref(t->seen);
                t->seen = TAKE_PTR(t->delivering_state);
                t->seen_version = t->delivering_version;
                (void) manager_save(m, t, NULL, 0);
        } else {
                if (reason == BUS_REASON_NOT_AUTHORIZED)
                        t->connected = false;
                t->delivering_state = json_decref_null(t->delivering_state);
        }
        if (t->redeliver) {
                t->redeliver = false;
                manager_deliver(m, t);
        }
}

void manager_deliver(Manager *m, Twin *t) {
        _cleanup_free_ char *topic = NULL, *body = NULL;
        json_auto_t *patch = NULL;

        /* Only to a device that listens: subscribed since it connected, or unknown since we started. */
        if (!t->subscribed && t->heard_presence)
                return;
        if (t->delivering) {
                t->redeliver = true;
                return;
        }
        patch = twin_pending_desired(t);
        if (!patch) {
                if (t->seen_version != t->desired_version) {
                        t->seen_version = t->desired_version;
                        (void) manager_save(m, t, NULL, 0);
                }
                return;
        }
        body = json_dumps(patch, JSON_COMPACT);
        t->delivering_state = json_deep_copy(t->desired);
        if (!body || !t->delivering_state || twin_topic_format_desired(t->desired_version, &topic) < 0) {
                t->delivering_state = json_decref_null(t->delivering_state);
                return;
        }
        t->delivering_version = t->desired_version;
        if (bus_publish(m->bus, BUS_TOPIC_DELIVER, body, strlen(body), t->identity, topic, on_delivered, t) < 0) {
                t->delivering_state = json_decref_null(t->delivering_state);
                return;
        }
        t->delivering = true;
}

void manager_link_changed(Manager *m, Twin *t, bool up) {
        BusLinkState old = t->link;
        unsigned before = m->links_up;

        m->heard_link = true;
        t->link = up ? BUS_LINK_UP : BUS_LINK_DOWN;
        if (old == BUS_LINK_UP && !up && m->links_up > 0)
                m->links_up--;
        if (old != BUS_LINK_UP && up)
                m->links_up++;
        if (!up || old == BUS_LINK_UP)
                return;

        log_debug("Upstream link of '%s' is up: reconciling its twin", t->identity);
        /* Reconcile: the cloud's current twin (then the desired diff to the device), then our reported queue. */
        if (t->fetch_rid)
                t->refetch = true; /* sent before the link was up: it may be dropped; ask again after it */
        else
                manager_fetch(m, t);
        manager_push(m, t);
        if (before == 0) {
                /* The outage is over: push every queue (hub-store opens those links on demand). */
                for (size_t i = 0; i < key_map_size(&m->twins); i++) {
                        Twin *o = key_map_value_at(&m->twins, i);
                        /* A retry waiting out its backoff goes now; one in flight keeps its timeout. */
                        if (!o->push_rid)
                                o->push_timer = sd_event_source_disable_unref(o->push_timer);
                        o->push_backoff_usec = 0;
                        manager_push(m, o);
                        if (o->subscribed && o->connected && o->link != BUS_LINK_UP)
                                manager_fetch(m, o);
                }
        }
}
