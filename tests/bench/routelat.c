/* edgehub-routelat: one publisher, one subscriber; one-way latency and throughput of one path */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "proto/util/cleanup.h"

/*
 * The publisher (the main thread) sends QoS 1 messages at --rate msg/s, or as
 * fast as a window of --window messages in flight allows with --rate 0. In
 * flight means not yet both acknowledged and received: a PUBACK-only window
 * would measure the broker's ingest, and let a slower subscriber fall behind
 * without bound (the hub queues it all; a bare mosquitto drops what exceeds
 * its max_queued_messages). Each payload
 * starts with "{seq} {CLOCK_MONOTONIC ns at send} " and is padded to
 * --payload bytes. The subscriber lives in the same process, so the one-way
 * latency is its receive time minus that stamp on one clock.
 *
 * Both connections use libmosquitto's own network threads: the subscriber's
 * callbacks run on its thread, PUBACKs on the publisher's. The first second
 * (--warmup) is sent at the same rate but not counted: TLS session caches,
 * RocksDB memtables and the hub's queue set-up are warm before measuring.
 *
 * Latencies are kept one by one (8 bytes each) and sorted at the end, so the
 * quantiles are exact.
 */

#define STAMP_MIN 42 /* "{20 digits} {20 digits} " */
#define STALL_NS (10u * 1000000000u) /* the window stayed shut this long: give up */
#define ACKED_EARLY UINT64_MAX /* sent_at[mid]: the PUBACK came before the send was noted */

typedef struct Endpoint {
        const char *host;
        unsigned port;
        const char *ca_file;
        const char *id;
        const char *username;
        const char *password;
        const char *topic;
} Endpoint;

typedef struct Options {
        Endpoint pub, sub;
        double rate;       /* msg/s; 0 = as fast as the window allows */
        unsigned window;   /* unacknowledged publishes at most */
        size_t payload;
        double seconds;
        double warmup;
        double drain;      /* after the last publish, wait this long for stragglers */
        double connect_timeout;
        bool nodelay;
        bool quiet;
} Options;

/* Growable array of uint64_t. */
typedef struct Samples {
        uint64_t *v;
        size_t n, cap;
} Samples;

typedef struct Receiver {
        /* written on the subscriber's thread only; read by main after it stopped */
        uint8_t *seen;            /* by seq: how many times received (saturates at 255) */
        size_t seen_cap;
        Samples latency_ns;       /* measured messages, first copy only */
        uint64_t received;        /* measured messages, all copies */
        uint64_t distinct;        /* measured messages, first copies */
        uint64_t duplicates;
        uint64_t reordered;       /* arrived after a higher seq */
        uint64_t foreign;         /* not one of ours */
        uint64_t highest;         /* highest seq + 1 seen */
        uint64_t first_ns, last_ns;
        int error;
} Receiver;

typedef struct Bench {
        Options o;
        struct mosquitto *pub, *sub;
        pthread_mutex_t lock;
        pthread_cond_t cond;
        /* under lock */
        int pub_connack, sub_connack;
        bool subscribed;
        uint64_t acked;
        uint64_t *sent_at;        /* by (uint16_t) mid */
        Samples ack_ns;
        bool pub_lost, sub_lost;
        /* subscriber thread */
        Receiver rx;
        /* shared without the lock */
        atomic_uint_fast64_t distinct_all; /* first copies of any seq, warm-up included */
        atomic_uint_fast64_t measure_from; /* first measured seq; UINT64_MAX while warming up */
        /* main thread */
        uint64_t sent;
        uint64_t late;            /* sent more than 1 ms after its slot (--rate only) */
        uint64_t publish_errors;
        uint64_t t_measure_ns, t_last_send_ns;
        double cpu_start;         /* this process's CPU seconds when both were connected */
} Bench;

static uint64_t now_ns(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void sleep_until_ns(uint64_t t) {
        struct timespec ts = { (time_t) (t / 1000000000u), (long) (t % 1000000000u) };

        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
}

static double cpu_seconds(void) {
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 0;
        return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
               (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

static int samples_add(Samples *s, uint64_t x) {
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 65536;
                uint64_t *v = realloc(s->v, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                s->v = v;
                s->cap = cap;
        }
        s->v[s->n++] = x;
        return 0;
}

static int u64_compare(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

        return x < y ? -1 : x > y;
}

/* Nearest-rank quantile of sorted samples, in ms. */
static double samples_quantile_ms(const Samples *s, double q) {
        size_t i;

        if (s->n == 0)
                return 0.0;
        i = (size_t) ((double) s->n * q);
        if (i >= s->n)
                i = s->n - 1;
        return (double) s->v[i] / 1e6;
}

/* "{seq} {ns} " at the start of a payload that is not NUL-terminated. */
static bool stamp_parse(const void *payload, int len, uint64_t *ret_seq, uint64_t *ret_ns) {
        char buf[STAMP_MIN + 1], *end;
        size_t n = len < 0 ? 0 : (size_t) len;
        uint64_t seq, ns;

        if (n < STAMP_MIN)
                return false;
        memcpy(buf, payload, STAMP_MIN);
        buf[STAMP_MIN] = 0;
        errno = 0;
        seq = strtoull(buf, &end, 10);
        if (errno || end != buf + 20 || *end != ' ')
                return false;
        ns = strtoull(end + 1, &end, 10);
        if (errno || end != buf + 41 || *end != ' ')
                return false;
        *ret_seq = seq;
        *ret_ns = ns;
        return true;
}

static int receiver_mark(Receiver *rx, uint64_t seq) {
        if (seq >= rx->seen_cap) {
                size_t cap = rx->seen_cap ? rx->seen_cap : 1u << 16;
                while (cap <= seq)
                        cap *= 2;
                uint8_t *seen = realloc(rx->seen, cap);
                if (!seen)
                        return -ENOMEM;
                memset(seen + rx->seen_cap, 0, cap - rx->seen_cap);
                rx->seen = seen;
                rx->seen_cap = cap;
        }
        if (rx->seen[seq] < UINT8_MAX)
                rx->seen[seq]++;
        return rx->seen[seq];
}

static void on_sub_message(struct mosquitto *mosq, void *userdata, const struct mosquitto_message *msg) {
        Bench *b = userdata;
        Receiver *rx = &b->rx;
        uint64_t t = now_ns(), seq, ns;
        int copies;
        bool measured;

        if (!stamp_parse(msg->payload, msg->payloadlen, &seq, &ns) || ns > t) {
                rx->foreign++;
                return;
        }
        copies = receiver_mark(rx, seq);
        if (copies < 0) {
                rx->error = copies;
                return;
        }
        if (copies == 1) {
                atomic_fetch_add(&b->distinct_all, 1);
                /* The publisher may be waiting for the window to open. */
                pthread_mutex_lock(&b->lock);
                pthread_cond_broadcast(&b->cond);
                pthread_mutex_unlock(&b->lock);
        }
        measured = seq >= atomic_load(&b->measure_from);
        if (!measured)
                return;
        rx->received++;
        if (copies > 1) {
                rx->duplicates++;
                return;
        }
        rx->distinct++;
        if (seq + 1 < rx->highest)
                rx->reordered++;
        else
                rx->highest = seq + 1;
        if (rx->first_ns == 0)
                rx->first_ns = t;
        rx->last_ns = t;
        if (samples_add(&rx->latency_ns, t - ns) < 0)
                rx->error = -ENOMEM;
}

static void on_connect(struct mosquitto *mosq, void *userdata, int rc) {
        Bench *b = userdata;
        int r;

        pthread_mutex_lock(&b->lock);
        if (mosq == b->sub) {
                b->sub_connack = rc;
                if (rc == 0) {
                        r = mosquitto_subscribe(mosq, NULL, b->o.sub.topic, 1);
                        if (r != MOSQ_ERR_SUCCESS)
                                fprintf(stderr, "routelat: subscribe: %s\n", mosquitto_strerror(r));
                }
        } else
                b->pub_connack = rc;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
}

static void on_subscribe(struct mosquitto *mosq, void *userdata, int mid, int qos_count, const int *granted) {
        Bench *b = userdata;

        pthread_mutex_lock(&b->lock);
        b->subscribed = qos_count > 0 && granted[0] <= 2;
        if (!b->subscribed)
                fprintf(stderr, "routelat: subscription to %s refused\n", b->o.sub.topic);
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
}

static void on_disconnect(struct mosquitto *mosq, void *userdata, int rc) {
        Bench *b = userdata;

        if (rc == 0)
                return;
        pthread_mutex_lock(&b->lock);
        if (mosq == b->sub)
                b->sub_lost = true;
        else
                b->pub_lost = true;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
}

static void on_publish(struct mosquitto *mosq, void *userdata, int mid) {
        Bench *b = userdata;
        uint64_t t = now_ns();

        pthread_mutex_lock(&b->lock);
        uint64_t sent_at = b->sent_at[(uint16_t) mid];
        /* 0: the PUBACK beat main's bookkeeping of the send; left out of the ack figures. */
        if (sent_at != 0 && b->t_measure_ns != 0 && sent_at >= b->t_measure_ns)
                (void) samples_add(&b->ack_ns, t - sent_at);
        b->sent_at[(uint16_t) mid] = sent_at == 0 ? ACKED_EARLY : 0;
        b->acked++;
        pthread_cond_broadcast(&b->cond);
        pthread_mutex_unlock(&b->lock);
}

static int endpoint_connect(Bench *b, const Endpoint *e, struct mosquitto **ret) {
        struct mosquitto *m;
        int r;

        m = mosquitto_new(e->id, true, b);
        if (!m)
                return -ENOMEM;
        mosquitto_connect_callback_set(m, on_connect);
        mosquitto_disconnect_callback_set(m, on_disconnect);
        mosquitto_publish_callback_set(m, on_publish);
        mosquitto_subscribe_callback_set(m, on_subscribe);
        mosquitto_message_callback_set(m, on_sub_message);
        *ret = m; /* freed by bench_done() */
        if (mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311) != MOSQ_ERR_SUCCESS ||
            /* libmosquitto's default of 20 would queue behind our own window */
            mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, (int) b->o.window) != MOSQ_ERR_SUCCESS ||
            mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, b->o.nodelay) != MOSQ_ERR_SUCCESS ||
            (e->username && mosquitto_username_pw_set(m, e->username, e->password) != MOSQ_ERR_SUCCESS))
                return -EINVAL;
        if (e->ca_file && mosquitto_tls_set(m, e->ca_file, NULL, NULL, NULL, NULL) != MOSQ_ERR_SUCCESS)
                return -EINVAL;
        r = mosquitto_connect(m, e->host, (int) e->port, 30);
        if (r != MOSQ_ERR_SUCCESS) {
                fprintf(stderr, "routelat: connect %s to %s:%u: %s\n", e->id, e->host, e->port, mosquitto_strerror(r));
                return -ECONNREFUSED;
        }
        if (mosquitto_loop_start(m) != MOSQ_ERR_SUCCESS)
                return -EAGAIN;
        return 0;
}

/* Waits on the condition until pred(b) holds or the deadline passes; the lock is held. */
static bool bench_wait(Bench *b, bool (*pred)(Bench *), uint64_t deadline_ns) {
        while (!pred(b)) {
                struct timespec ts;
                uint64_t t = now_ns();

                if (t >= deadline_ns)
                        return false;
                /* The condition variable runs on CLOCK_REALTIME: wait in short slices. */
                (void) clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 10 * 1000 * 1000;
                if (ts.tv_nsec >= 1000000000) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000;
                }
                (void) pthread_cond_timedwait(&b->cond, &b->lock, &ts);
        }
        return true;
}

static bool sub_ready(Bench *b) {
        return b->subscribed || b->sub_connack > 0 || b->sub_lost;
}

static bool pub_ready(Bench *b) {
        return b->pub_connack >= 0 || b->pub_lost;
}

static bool window_open(Bench *b) {
        return (b->sent - b->acked < b->o.window && b->sent - atomic_load(&b->distinct_all) < b->o.window) ||
               b->pub_lost || b->sub_lost;
}

static bool all_acked(Bench *b) {
        return b->acked >= b->sent || b->pub_lost;
}

static void payload_fill(char *p, size_t len, uint64_t seq, uint64_t ns) {
        /* Fixed-width stamp so every payload has the same size. */
        (void) snprintf(p, STAMP_MIN + 1, "%020" PRIu64 " %020" PRIu64 " ", seq, ns);
        if (len > STAMP_MIN)
                memset(p + STAMP_MIN, 'x', len - STAMP_MIN);
}

/* Publishes for warmup + seconds. Returns 0, or negative when a connection broke. */
static int bench_publish(Bench *b) {
        const Options *o = &b->o;
        _cleanup_free_ char *payload = malloc(o->payload);
        uint64_t t0 = now_ns(), t_warm = t0 + (uint64_t) (o->warmup * 1e9);
        uint64_t t_end = t_warm + (uint64_t) (o->seconds * 1e9);
        uint64_t interval = o->rate > 0 ? (uint64_t) (1e9 / o->rate) : 0, slot = t0;

        if (!payload)
                return -ENOMEM;
        for (;;) {
                uint64_t t;
                int mid, r;

                if (interval) {
                        sleep_until_ns(slot);
                        slot += interval;
                }
                pthread_mutex_lock(&b->lock);
                bool open = bench_wait(b, window_open, now_ns() + STALL_NS);
                bool lost = b->pub_lost || b->sub_lost;
                pthread_mutex_unlock(&b->lock);
                if (lost)
                        return -ECONNRESET;
                if (!open)
                        return -ETIMEDOUT; /* lost messages hold the window shut */

                t = now_ns();
                if (t >= t_end)
                        break;
                if (b->t_measure_ns == 0 && t >= t_warm) {
                        pthread_mutex_lock(&b->lock);
                        b->t_measure_ns = t;
                        pthread_mutex_unlock(&b->lock);
                        atomic_store(&b->measure_from, b->sent);
                }
                if (interval && t > slot - interval + 1000000)
                        b->late += b->t_measure_ns != 0;
                payload_fill(payload, o->payload, b->sent, t);
                /* Counted before the call: its PUBACK may come before mosquitto_publish() returns. */
                pthread_mutex_lock(&b->lock);
                b->sent++;
                pthread_mutex_unlock(&b->lock);
                r = mosquitto_publish(b->pub, &mid, o->pub.topic, (int) o->payload, payload, 1, false);
                pthread_mutex_lock(&b->lock);
                if (r != MOSQ_ERR_SUCCESS) {
                        b->sent--;
                        b->publish_errors++;
                } else
                        b->sent_at[(uint16_t) mid] = b->sent_at[(uint16_t) mid] == ACKED_EARLY ? 0 : t;
                pthread_mutex_unlock(&b->lock);
                if (r != MOSQ_ERR_SUCCESS)
                        continue;
                b->t_last_send_ns = t;
        }
        return 0;
}

static void bench_done(Bench *b) {
        if (b->pub) {
                (void) mosquitto_disconnect(b->pub);
                (void) mosquitto_loop_stop(b->pub, false);
                mosquitto_destroy(b->pub);
        }
        if (b->sub) {
                (void) mosquitto_disconnect(b->sub);
                (void) mosquitto_loop_stop(b->sub, false);
                mosquitto_destroy(b->sub);
        }
        free(b->sent_at);
        free(b->ack_ns.v);
        free(b->rx.seen);
        free(b->rx.latency_ns.v);
        pthread_mutex_destroy(&b->lock);
        pthread_cond_destroy(&b->cond);
}

static void bench_report(Bench *b) {
        const Options *o = &b->o;
        Receiver *rx = &b->rx;
        uint64_t from = atomic_load(&b->measure_from), measured_sent = 0, lost = 0;
        double send_s = 0, recv_s = 0;
        json_t *out;

        if (from != UINT64_MAX && b->sent > from) {
                measured_sent = b->sent - from;
                for (uint64_t s = from; s < b->sent; s++)
                        lost += s >= rx->seen_cap || rx->seen[s] == 0;
                send_s = (double) (b->t_last_send_ns - b->t_measure_ns) / 1e9;
        }
        if (rx->last_ns > b->t_measure_ns && b->t_measure_ns)
                recv_s = (double) (rx->last_ns - b->t_measure_ns) / 1e9;
        qsort(rx->latency_ns.v, rx->latency_ns.n, sizeof(uint64_t), u64_compare);
        qsort(b->ack_ns.v, b->ack_ns.n, sizeof(uint64_t), u64_compare);

        out = json_pack("{s:f, s:I, s:I, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, "
                        "s:f, s:{s:f, s:f, s:f, s:f, s:f}, s:{s:f, s:f, s:f, s:f}}",
                        "rate_target", o->rate,
                        "window", (json_int_t) o->window,
                        "payload", (json_int_t) o->payload,
                        "seconds", send_s,
                        "sent", (json_int_t) measured_sent,
                        "received", (json_int_t) rx->received,
                        "lost", (json_int_t) lost,
                        "reordered", (json_int_t) rx->reordered,
                        "duplicates", (json_int_t) rx->duplicates,
                        "foreign", (json_int_t) rx->foreign,
                        "late_sends", (json_int_t) b->late,
                        "publish_errors", (json_int_t) b->publish_errors,
                        "send_rate", send_s > 0 ? (double) measured_sent / send_s : 0.0,
                        /* throughput of the path: what came out of it, from the first measured send */
                        "msgs_per_s", recv_s > 0 ? (double) rx->distinct / recv_s : 0.0,
                        "warmup_seconds", o->warmup,
                        "receive_seconds", recv_s,
                        "cpu_seconds", cpu_seconds() - b->cpu_start,
                        "latency_ms",
                        "p50", samples_quantile_ms(&rx->latency_ns, 0.50),
                        "p90", samples_quantile_ms(&rx->latency_ns, 0.90),
                        "p99", samples_quantile_ms(&rx->latency_ns, 0.99),
                        "p999", samples_quantile_ms(&rx->latency_ns, 0.999),
                        "max", samples_quantile_ms(&rx->latency_ns, 1.0),
                        "ack_latency_ms",
                        "p50", samples_quantile_ms(&b->ack_ns, 0.50),
                        "p90", samples_quantile_ms(&b->ack_ns, 0.90),
                        "p99", samples_quantile_ms(&b->ack_ns, 0.99),
                        "max", samples_quantile_ms(&b->ack_ns, 1.0));
        if (out) {
                (void) json_dumpf(out, stdout, JSON_COMPACT);
                fputc('\n', stdout);
                fflush(stdout);
                json_decref(out);
        }
}

static void help(void) {
        printf("edgehub-routelat [OPTIONS]\n"
               "One publisher and one subscriber connection (MQTT 3.1.1, QoS 1, TLS with a CA file):\n"
               "one-way latency and throughput from the publisher's topic to the subscriber.\n"
               "Prints one JSON line of figures on stdout.\n\n"
               "  --host/--port/--ca-file     defaults for both connections (127.0.0.1, 8883, none = plain TCP)\n"
               "  --pub-host/--pub-port/--pub-ca-file, --sub-host/--sub-port/--sub-ca-file\n"
               "  --pub-id ID, --sub-id ID    client ids (routelat-pub, routelat-sub)\n"
               "  --pub-username U, --pub-password P, --sub-username U, --sub-password P\n"
               "  --pub-topic T               publish topic (routelat)\n"
               "  --sub-topic F               subscription filter (default: the publish topic)\n"
               "  --rate R                    messages a second; 0 = as fast as the window allows (1000)\n"
               "  --window N                  messages in flight (not yet acknowledged and received) at most (100)\n"
               "  --payload BYTES             payload size, at least 42 (256)\n"
               "  --seconds S                 measured sending time (10)\n"
               "  --warmup S                  unmeasured sending first (1)\n"
               "  --drain S                   wait this long for the last messages (5)\n"
               "  --nodelay                   TCP_NODELAY on both connections (default: Nagle, as most clients)\n"
               "  --quiet                     no progress on stderr\n");
}

static int parse_argv(int argc, char **argv, Options *o) {
        enum { ARG_HOST = 0x100, ARG_PORT, ARG_CA, ARG_PUB_HOST, ARG_PUB_PORT, ARG_PUB_CA, ARG_SUB_HOST, ARG_SUB_PORT,
               ARG_SUB_CA, ARG_PUB_ID, ARG_SUB_ID, ARG_PUB_USER, ARG_PUB_PASS, ARG_SUB_USER, ARG_SUB_PASS,
               ARG_PUB_TOPIC, ARG_SUB_TOPIC, ARG_RATE, ARG_WINDOW, ARG_PAYLOAD, ARG_SECONDS, ARG_WARMUP,
               ARG_DRAIN, ARG_NODELAY, ARG_QUIET };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "host", required_argument, NULL, ARG_HOST },
                { "port", required_argument, NULL, ARG_PORT },
                { "ca-file", required_argument, NULL, ARG_CA },
                { "pub-host", required_argument, NULL, ARG_PUB_HOST },
                { "pub-port", required_argument, NULL, ARG_PUB_PORT },
                { "pub-ca-file", required_argument, NULL, ARG_PUB_CA },
                { "sub-host", required_argument, NULL, ARG_SUB_HOST },
                { "sub-port", required_argument, NULL, ARG_SUB_PORT },
                { "sub-ca-file", required_argument, NULL, ARG_SUB_CA },
                { "pub-id", required_argument, NULL, ARG_PUB_ID },
                { "sub-id", required_argument, NULL, ARG_SUB_ID },
                { "pub-username", required_argument, NULL, ARG_PUB_USER },
                { "pub-password", required_argument, NULL, ARG_PUB_PASS },
                { "sub-username", required_argument, NULL, ARG_SUB_USER },
                { "sub-password", required_argument, NULL, ARG_SUB_PASS },
                { "pub-topic", required_argument, NULL, ARG_PUB_TOPIC },
                { "sub-topic", required_argument, NULL, ARG_SUB_TOPIC },
                { "rate", required_argument, NULL, ARG_RATE },
                { "window", required_argument, NULL, ARG_WINDOW },
                { "payload", required_argument, NULL, ARG_PAYLOAD },
                { "seconds", required_argument, NULL, ARG_SECONDS },
                { "warmup", required_argument, NULL, ARG_WARMUP },
                { "drain", required_argument, NULL, ARG_DRAIN },
                { "nodelay", no_argument, NULL, ARG_NODELAY },
                { "quiet", no_argument, NULL, ARG_QUIET },
                {}
        };
        const char *host = "127.0.0.1", *ca = NULL;
        unsigned port = 8883;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_HOST: host = optarg; break;
                case ARG_PORT: port = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_CA: ca = optarg; break;
                case ARG_PUB_HOST: o->pub.host = optarg; break;
                case ARG_PUB_PORT: o->pub.port = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_PUB_CA: o->pub.ca_file = optarg; break;
                case ARG_SUB_HOST: o->sub.host = optarg; break;
                case ARG_SUB_PORT: o->sub.port = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_SUB_CA: o->sub.ca_file = optarg; break;
                case ARG_PUB_ID: o->pub.id = optarg; break;
                case ARG_SUB_ID: o->sub.id = optarg; break;
                case ARG_PUB_USER: o->pub.username = optarg; break;
                case ARG_PUB_PASS: o->pub.password = optarg; break;
                case ARG_SUB_USER: o->sub.username = optarg; break;
                case ARG_SUB_PASS: o->sub.password = optarg; break;
                case ARG_PUB_TOPIC: o->pub.topic = optarg; break;
                case ARG_SUB_TOPIC: o->sub.topic = optarg; break;
                case ARG_RATE: o->rate = strtod(optarg, NULL); break;
                case ARG_WINDOW: o->window = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_PAYLOAD: o->payload = strtoul(optarg, NULL, 10); break;
                case ARG_SECONDS: o->seconds = strtod(optarg, NULL); break;
                case ARG_WARMUP: o->warmup = strtod(optarg, NULL); break;
                case ARG_DRAIN: o->drain = strtod(optarg, NULL); break;
                case ARG_NODELAY: o->nodelay = true; break;
                case ARG_QUIET: o->quiet = true; break;
                default:
                        return -EINVAL;
                }
        o->pub.host = o->pub.host ?: host;
        o->sub.host = o->sub.host ?: host;
        o->pub.port = o->pub.port ?: port;
        o->sub.port = o->sub.port ?: port;
        o->pub.ca_file = o->pub.ca_file ?: ca;
        o->sub.ca_file = o->sub.ca_file ?: ca;
        o->sub.topic = o->sub.topic ?: o->pub.topic;
        if (optind < argc || o->pub.port == 0 || o->pub.port > 65535 || o->sub.port == 0 || o->sub.port > 65535 ||
            o->rate < 0 || o->window == 0 || o->window > 65535 || o->payload < STAMP_MIN ||
            o->payload > 262144 || !(o->seconds > 0) || o->warmup < 0 || o->drain < 0) {
                fprintf(stderr, "routelat: invalid arguments (see --help)\n");
                return -EINVAL;
        }
        return 1;
}

int main(int argc, char **argv) {
        _cleanup_(bench_done) Bench b = {
                .o = {
                        .pub = { .id = "routelat-pub", .topic = "routelat" },
                        .sub = { .id = "routelat-sub" },
                        .rate = 1000, .window = 100, .payload = 256, .seconds = 10, .warmup = 1, .drain = 5,
                        .connect_timeout = 30,
                },
                .lock = PTHREAD_MUTEX_INITIALIZER,
                .cond = PTHREAD_COND_INITIALIZER,
                .pub_connack = -1,
                .sub_connack = -1,
                .measure_from = UINT64_MAX,
        };
        uint64_t deadline;
        bool ready, drained;
        int r;

        r = parse_argv(argc, argv, &b.o);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        b.sent_at = calloc(65536, sizeof(uint64_t));
        if (!b.sent_at)
                return 2;

        mosquitto_lib_init();
        /* Subscribed first, so no message of the warm-up even is published to nobody. */
        r = endpoint_connect(&b, &b.o.sub, &b.sub);
        if (r >= 0) {
                pthread_mutex_lock(&b.lock);
                ready = bench_wait(&b, sub_ready, now_ns() + (uint64_t) (b.o.connect_timeout * 1e9)) &&
                        b.subscribed;
                pthread_mutex_unlock(&b.lock);
                r = ready ? endpoint_connect(&b, &b.o.pub, &b.pub) : -ETIMEDOUT;
        }
        if (r < 0) {
                fprintf(stderr, "routelat: setup failed: %s\n", strerror(-r));
                return 2;
        }
        pthread_mutex_lock(&b.lock);
        ready = bench_wait(&b, pub_ready, now_ns() + (uint64_t) (b.o.connect_timeout * 1e9));
        ready = ready && b.pub_connack == 0 && b.sub_connack == 0 && b.subscribed;
        pthread_mutex_unlock(&b.lock);
        if (!ready) {
                fprintf(stderr, "routelat: not connected (publisher CONNACK %d, subscriber CONNACK %d, subscribed %d)\n",
                        b.pub_connack, b.sub_connack, b.subscribed);
                return 2;
        }
        b.cpu_start = cpu_seconds();
        /* run-bench.py starts its CPU meters on this line. */
        if (!b.o.quiet)
                fprintf(stderr, "routelat: connected; %.0f s warm-up, %.0f s at %s\n", b.o.warmup, b.o.seconds,
                        b.o.rate > 0 ? "--rate" : "full speed");

        r = bench_publish(&b);
        if (r < 0)
                fprintf(stderr, "routelat: publishing stopped early: %s\n", strerror(-r));

        /* Stragglers: every PUBACK, and every message at the subscriber. */
        deadline = now_ns() + (uint64_t) (b.o.drain * 1e9);
        pthread_mutex_lock(&b.lock);
        (void) bench_wait(&b, all_acked, deadline);
        pthread_mutex_unlock(&b.lock);
        while (atomic_load(&b.distinct_all) < b.sent && now_ns() < deadline)
                sleep_until_ns(now_ns() + 5000000u);
        drained = atomic_load(&b.distinct_all) >= b.sent;

        /* Stop the subscriber's thread before reading what it wrote. */
        (void) mosquitto_disconnect(b.sub);
        (void) mosquitto_loop_stop(b.sub, false);
        if (b.rx.error < 0)
                fprintf(stderr, "routelat: receiver: %s\n", strerror(-b.rx.error));
        pthread_mutex_lock(&b.lock);
        bench_report(&b);
        pthread_mutex_unlock(&b.lock);
        return r < 0 || !drained || b.rx.error < 0 ? 1 : 0;
}
