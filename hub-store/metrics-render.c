/* hub-store's metrics in Prometheus text format, named as Azure IoT Edge's edgeHub names them */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hub-store/manager.h"
#include "hub-store/metrics.h"
#include "proto/util/cleanup.h"

/*
 * Where the meaning is the same as edgeHub's, so are the name and labels
 * (existing IoT Edge dashboards work): every sample carries iothub and
 * edge_device; per-identity series use id (edgeHub's "device/module" form is
 * ours too). Counters are the store's "since start" counters: they restart
 * at 0 with hub-store, which Prometheus' rate() expects of a counter.
 * Differences: edgehub_offline_duration_seconds is a gauge (the current
 * outage, 0 while up) where edgeHub has a summary; edgehub_messages_rejected_total
 * and edgehub_store_* are ours.
 */

typedef struct Labels {
        const char *hub;
        const char *edge;
} Labels;

void metrics_write_label_value(FILE *f, const char *s) {
        for (; s && *s; s++)
                switch (*s) {
                case '\\':
                        fputs("\\\\", f);
                        break;
                case '"':
                        fputs("\\\"", f);
                        break;
                case '\n':
                        fputs("\\n", f);
                        break;
                default:
                        fputc(*s, f);
                }
}

static void header(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* name{iothub="…",edge_device="…"[,k="v"]…} — extra: NULL-terminated key, value pairs. */
static void sample_begin(FILE *f, const Labels *l, const char *name, const char *const *extra) {
        fprintf(f, "%s{iothub=\"", name);
        metrics_write_label_value(f, l->hub);
        fputs("\",edge_device=\"", f);
        metrics_write_label_value(f, l->edge);
        fputc('"', f);
        for (; extra && extra[0]; extra += 2) {
                fprintf(f, ",%s=\"", extra[0]);
                metrics_write_label_value(f, extra[1]);
                fputc('"', f);
        }
        fputs("} ", f);
}

static void sample_u64(FILE *f, const Labels *l, const char *name, const char *const *extra, uint64_t v) {
        sample_begin(f, l, name, extra);
        fprintf(f, "%" PRIu64 "\n", v);
}

/* edgeHub's "to" for the cloud is "upstream"; other endpoints keep their names. */
static const char *endpoint_to(const char *endpoint) {
        return strcmp(endpoint, STORE_ENDPOINT_UPSTREAM) == 0 ? "upstream" : endpoint;
}

static int stream_by_identity_cmp(const void *a, const void *b) {
        const StoreStream *x = *(const StoreStream *const *) a, *y = *(const StoreStream *const *) b;
        int c = strcmp(x->identity, y->identity);
        return c != 0 ? c : strcmp(x->endpoint, y->endpoint);
}

/*
 * The per-identity series, in one pass over the streams sorted by identity,
 * then endpoint: a scrape is O(streams log streams), never O(messages).
 */
static int render_messages(Manager *m, FILE *f, const Labels *l) {
        size_t n = store_n_streams(m->store);
        _cleanup_free_ const StoreStream **sorted = calloc(n ?: 1, sizeof(*sorted));

        if (!sorted)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                sorted[i] = store_stream_at(m->store, i);
        qsort(sorted, n, sizeof(*sorted), stream_by_identity_cmp);

        header(f, "edgehub_messages_received_total", "counter", "Messages received from each identity and stored");
        for (size_t i = 0, j; i < n; i = j) {
                uint64_t received = 0;
                for (j = i; j < n && strcmp(sorted[j]->identity, sorted[i]->identity) == 0; j++)
                        received += sorted[j]->received;
                sample_u64(f, l, "edgehub_messages_received_total",
                           (const char *const[]) { "id", sorted[i]->identity, NULL }, received);
        }

        header(f, "edgehub_messages_sent_total", "counter",
               "Messages delivered to an endpoint (upstream: acknowledged by the IoT Hub)");
        for (size_t i = 0, j; i < n; i = j) {
                uint64_t sent = 0;
                /* Priorities of one (identity, endpoint) add up. */
                for (j = i; j < n && stream_by_identity_cmp(&sorted[j], &sorted[i]) == 0; j++)
                        sent += sorted[j]->delivered;
                sample_u64(f, l, "edgehub_messages_sent_total",
                           (const char *const[]) { "id", sorted[i]->identity, "to", endpoint_to(sorted[i]->endpoint),
                                                   NULL },
                           sent);
        }

        header(f, "edgehub_messages_dropped_total", "counter",
               "Stored messages dropped: ttl_expiry (time_to_live passed), overflow (drop_oldest, or never sendable)");
        for (size_t i = 0, j; i < n; i = j) {
                uint64_t expired = 0, dropped = 0;
                for (j = i; j < n && strcmp(sorted[j]->identity, sorted[i]->identity) == 0; j++) {
                        expired += sorted[j]->expired;
                        dropped += sorted[j]->dropped;
                }
                sample_u64(f, l, "edgehub_messages_dropped_total",
                           (const char *const[]) { "from", sorted[i]->identity, "reason", "ttl_expiry", NULL }, expired);
                sample_u64(f, l, "edgehub_messages_dropped_total",
                           (const char *const[]) { "from", sorted[i]->identity, "reason", "overflow", NULL }, dropped);
        }

        header(f, "edgehub_messages_rejected_total", "counter",
               "Messages refused without PUBACK while the store was full (reject_new); the device resends");
        for (size_t i = 0, j; i < n; i = j) {
                uint64_t rejected = 0;
                for (j = i; j < n && strcmp(sorted[j]->identity, sorted[i]->identity) == 0; j++)
                        rejected += sorted[j]->rejected;
                sample_u64(f, l, "edgehub_messages_rejected_total",
                           (const char *const[]) { "from", sorted[i]->identity, NULL }, rejected);
        }
        return 0;
}

static void render_queues(Manager *m, FILE *f, const Labels *l) {
        size_t n = store_n_streams(m->store);
        bool upstream_seen = false;

        header(f, "edgehub_queue_length", "gauge", "Messages waiting per endpoint and priority");
        /* Streams sort by endpoint, then priority: one queue's streams are adjacent. */
        for (size_t i = 0; i < n;) {
                const StoreStream *st = store_stream_at(m->store, i);
                uint64_t messages = 0;
                char priority[4];
                size_t j = i;

                for (; j < n; j++) {
                        const StoreStream *o = store_stream_at(m->store, j);
                        if (strcmp(o->endpoint, st->endpoint) != 0 || o->priority != st->priority)
                                break;
                        messages += o->messages;
                }
                (void) snprintf(priority, sizeof(priority), "%u", (unsigned) st->priority);
                if (st->priority == 0 && strcmp(st->endpoint, STORE_ENDPOINT_UPSTREAM) == 0)
                        upstream_seen = true;
                sample_u64(f, l, "edgehub_queue_length",
                           (const char *const[]) { "endpoint", st->endpoint, "priority", priority, NULL }, messages);
                i = j;
        }
        /* Listed empty or not, as hubctl queues does: dashboards need the series from the start. */
        if (!upstream_seen)
                sample_u64(f, l, "edgehub_queue_length",
                           (const char *const[]) { "endpoint", STORE_ENDPOINT_UPSTREAM, "priority", "0", NULL }, 0);
}

static void render_state(Manager *m, FILE *f, const Labels *l) {
        uint64_t connected = 0, now = realtime_msec();

        for (size_t i = 0; i < key_map_size(&m->devices); i++) {
                const Device *d = key_map_value_at(&m->devices, i);
                if (d->connected)
                        connected++;
        }
        header(f, "edgehub_connected_clients", "gauge", "Devices and modules connected to the broker");
        sample_u64(f, l, "edgehub_connected_clients", NULL, connected);

        header(f, "edgehub_offline_count_total", "counter", "Times the uplink went down");
        sample_u64(f, l, "edgehub_offline_count_total", NULL, m->offline_count);

        header(f, "edgehub_offline_duration_seconds", "gauge", "Length of the current uplink outage (0 while up)");
        sample_begin(f, l, "edgehub_offline_duration_seconds", NULL);
        fprintf(f, "%.3f\n", m->uplink == UPLINK_DOWN && now > m->offline_since_ms
                                     ? (double) (now - m->offline_since_ms) / 1000.0 : 0.0);

        header(f, "edgehub_upstream_links", "gauge", "Upstream MQTT links (one per identity), by state");
        sample_u64(f, l, "edgehub_upstream_links", (const char *const[]) { "state", "up", NULL }, manager_links_up(m));
        sample_u64(f, l, "edgehub_upstream_links", (const char *const[]) { "state", "total", NULL },
                   manager_links_total(m));

        header(f, "edgehub_store_messages", "gauge", "Messages in the store");
        sample_u64(f, l, "edgehub_store_messages", NULL, store_messages(m->store));
        header(f, "edgehub_store_bytes", "gauge", "Bytes of stored messages (counted against storage.max_bytes)");
        sample_u64(f, l, "edgehub_store_bytes", NULL, store_bytes(m->store));
        header(f, "edgehub_store_max_bytes", "gauge", "storage.max_bytes");
        sample_u64(f, l, "edgehub_store_max_bytes", NULL, store_max_bytes(m->store));
}

int metrics_render(Manager *m, FILE *f) {
        const Labels l = { .hub = m->config->hub_hostname, .edge = m->config->edge_device_id };

        int r;

        r = render_messages(m, f, &l);
        if (r < 0)
                return r;
        render_queues(m, f, &l);
        render_state(m, f, &l);
        return fflush(f) == 0 && !ferror(f) ? 0 : -ENOMEM;
}
