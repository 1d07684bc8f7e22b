/* One identity's twin as twin-sync keeps it */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/twin-patch.h"
#include "proto/util/cleanup.h"
#include "twin-sync/twin.h"

int twin_new(Twin **ret, const char *identity) {
        _cleanup_(twin_freep) Twin *t = calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        t->identity = strdup(identity);
        t->desired = json_object();
        t->reported = json_object();
        t->seen = json_object();
        if (!t->identity || !t->desired || !t->reported || !t->seen)
                return -ENOMEM;
        t->next_seq = 1;
        *ret = TAKE_PTR(t);
        return 0;
}

Twin *twin_free(Twin *t) {
        if (!t)
                return NULL;
        while (t->waiters) {
                GetWaiter *w = t->waiters;
                t->waiters = w->next;
                free(w);
        }
        t->fetch_timer = sd_event_source_disable_unref(t->fetch_timer);
        t->fetch_resend = sd_event_source_disable_unref(t->fetch_resend);
        t->push_timer = sd_event_source_disable_unref(t->push_timer);
        free(t->fetch_rid);
        free(t->late_fetch_rid);
        free(t->push_rid);
        json_decref(t->delivering_state);
        json_decref(t->desired);
        json_decref(t->reported);
        json_decref(t->seen);
        free(t->identity);
        free(t);
        return NULL;
}

static json_t *with_version(const json_t *props, int64_t version) {
        json_t *o = json_deep_copy(props);

        if (!o || json_object_set_new(o, "$version", json_integer(version)) < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

json_t *twin_view(const Twin *t) {
        json_t *d = with_version(t->desired, t->desired_version);
        json_t *r = with_version(t->reported, t->reported_version);

        if (!d || !r) {
                json_decref(d);
                json_decref(r);
                return NULL;
        }
        return json_pack("{s:o, s:o}", "desired", d, "reported", r);
}

int twin_check_reported(const Twin *t, const json_t *patch, json_t **ret_reported) {
        json_auto_t *r = json_deep_copy(t->reported);

        if (!r || twin_merge(r, patch) < 0)
                return -ENOMEM;
        if (twin_document_size(r) > TWIN_DOCUMENT_SIZE_MAX)
                return -EMSGSIZE;
        *ret_reported = TAKE_PTR(r);
        return 0;
}

json_t *twin_pending_desired(const Twin *t) {
        if (t->seen_version == t->desired_version && json_equal(t->seen, t->desired))
                return NULL;
        json_t *d = twin_diff(t->seen, t->desired);
        if (!d)
                return NULL;
        /* Only the version moved (changes that cancelled out): nothing to tell the device. */
        if (json_object_size(d) == 0) {
                json_decref(d);
                return NULL;
        }
        if (json_object_set_new(d, "$version", json_integer(t->desired_version)) < 0) {
                json_decref(d);
                return NULL;
        }
        return d;
}

int twin_add_waiter(Twin *t, const char *rid) {
        size_t n = strlen(rid);
        GetWaiter *w = malloc(sizeof(*w) + n + 1);

        if (!w)
                return -ENOMEM;
        memcpy(w->rid, rid, n + 1);
        w->next = t->waiters;
        t->waiters = w;
        return 0;
}
