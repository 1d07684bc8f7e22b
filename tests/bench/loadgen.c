/* edgehub-loadgen: many IoT Hub devices publishing QoS 1 telemetry, in one process */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <mosquitto.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "proto/iothub/sas-token.h"
#include "proto/util/cleanup.h"

/*
 * Each device is one libmosquitto client. Clients are driven without
 * libmosquitto's threads: every worker thread polls the sockets of its share
 * of the clients and calls mosquitto_loop_read/write/misc, so the generator
 * costs what MQTT over TLS costs and nothing more. The send window is
 * self-clocked: every PUBACK (on_publish) publishes the next message, so at
 * most --inflight messages per device are unacknowledged.
 *
 * Publishing starts only once every client has its CONNACK, so the figure
 * is the steady-state rate, not the connect storm (reported on its own).
 */

#define API_VERSION "2021-04-12"
#define HIST_BUCKETS 240u
#define MID_SLOTS 65536u

typedef struct Options {
        const char *host;
        unsigned port;
        const char *ca_file;
        const char *hub_name;
        const char *audience;
        const char *ids_file;
        const char *prefix;
        unsigned count;
        uint64_t messages;
        size_t payload;
        unsigned inflight;
        unsigned threads;
        unsigned keepalive;
        double connect_timeout;
        double timeout;
        bool compressible;
        bool quiet;
} Options;

typedef struct Worker Worker;

typedef struct Client {
        Worker *worker;
        struct mosquitto *mosq;
        char *id;
        char *key;         /* base64 device key; NULL: any password (bare broker) */
        char *topic;
        uint64_t sent;
        uint64_t acked;
        uint32_t *sent_at; /* by message id: microseconds since the generator started */
        uint64_t rng;      /* xorshift state for the payload filler */
        int connack;       /* -1 until the CONNACK */
        bool done;
        double retry_at;   /* when a lost connection is retried; 0 = connected or never */
} Client;

struct Worker {
        pthread_t thread;
        const Options *options;
        Client **clients;
        size_t n_clients;
        uint64_t hist[HIST_BUCKETS];
        uint64_t disconnects;
        uint64_t publish_errors;
        bool started;
};

static double t_zero;
static atomic_bool go;
static atomic_bool stop;
static atomic_uint_fast64_t total_acked;
static atomic_uint_fast64_t connacks_ok;
static atomic_uint_fast64_t connacks_refused;

static double now_sec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static uint32_t now_us(void) {
        return (uint32_t) ((now_sec() - t_zero) * 1e6);
}

/* Log-linear buckets: exact below 16 us, then 8 per power of two (about 12% wide). */
static unsigned hist_bucket(uint32_t us) {
        unsigned e;

        if (us < 16)
                return us;
        e = 31u - (unsigned) __builtin_clz(us);
        return 16u + (e - 4u) * 8u + ((us >> (e - 3u)) & 7u);
}

static double hist_bucket_upper_ms(unsigned b) {
        unsigned e, m;

        if (b < 16)
                return (double) (b + 1) / 1000.0;
        e = (b - 16u) / 8u + 4u;
        m = (b - 16u) % 8u;
        return (double) ((uint64_t) (9u + m) << (e - 3u)) / 1000.0;
}

static double hist_quantile_ms(const uint64_t *hist, uint64_t total, double q) {
        uint64_t want = (uint64_t) ((double) total * q), seen = 0;

        if (want >= total) {
                for (unsigned b = HIST_BUCKETS; b > 0; b--)
                        if (hist[b - 1])
                                return hist_bucket_upper_ms(b - 1);
                return 0.0;
        }

        for (unsigned b = 0; b < HIST_BUCKETS; b++) {
                seen += hist[b];
                if (seen > want)
                        return hist_bucket_upper_ms(b);
        }
        return 0.0;
}

static void client_free(Client *c) {
        if (!c)
                return;
        if (c->mosq)
                mosquitto_destroy(c->mosq);
        free(c->sent_at);
        free(c->topic);
        free(c->key);
        free(c->id);
        free(c);
}
DEFINE_CLEANUP_FUNC(Client, client_free);

/*
 * Printable but incompressible (6 random bits a byte), so bytes on disk are not
 * flattered by the store's compression; --compressible fills with 'x' instead.
 */
static void payload_fill(char *p, size_t len, bool compressible, uint64_t *rng) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        uint64_t x = *rng;

        if (compressible) {
                memset(p, 'x', len);
                return;
        }
        for (size_t i = 0; i < len; i++) {
                if (i % 10 == 0) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                }
                p[i] = alphabet[(x >> (6 * (i % 10))) & 63];
        }
        *rng = x;
}

static void client_publish_window(Client *c) {
        const Options *o = c->worker->options;
        char payload[o->payload ? o->payload : 1];
        int mid, r;

        while (c->sent < o->messages && c->sent - c->acked < o->inflight) {
                /* "{seq} …": the sequence lets a reader check order upstream. */
                int n = snprintf(payload, sizeof(payload), "%" PRIu64 " ", c->sent);
                if (n > 0 && (size_t) n < o->payload)
                        payload_fill(payload + n, o->payload - (size_t) n, o->compressible, &c->rng);
                r = mosquitto_publish(c->mosq, &mid, c->topic, (int) o->payload, payload, 1, false);
                if (r != MOSQ_ERR_SUCCESS) {
                        c->worker->publish_errors++;
                        return; /* resumed by the next PUBACK or reconnect */
                }
                c->sent_at[(uint16_t) mid] = now_us();
                c->sent++;
        }
}

static void on_connect(struct mosquitto *mosq, void *userdata, int rc) {
        Client *c = userdata;
        bool first = c->connack < 0;

        c->connack = rc;
        if (rc != 0) {
                /* Refused: not retried, and not counted as done in the figures. */
                c->done = true;
                if (first)
                        atomic_fetch_add(&connacks_refused, 1);
                return;
        }
        if (first)
                atomic_fetch_add(&connacks_ok, 1);
        /* After a reconnect libmosquitto resends the unacknowledged window itself. */
        if (c->worker->started)
                client_publish_window(c);
}

static void on_disconnect(struct mosquitto *mosq, void *userdata, int rc) {
        Client *c = userdata;

        if (rc != 0 && !c->done)
                c->worker->disconnects++;
}

static void on_publish(struct mosquitto *mosq, void *userdata, int mid) {
        Client *c = userdata;
        Worker *w = c->worker;
        uint32_t dt = now_us() - c->sent_at[(uint16_t) mid];

        w->hist[hist_bucket(dt)]++;
        c->acked++;
        atomic_fetch_add_explicit(&total_acked, 1, memory_order_relaxed);
        if (c->acked >= w->options->messages) {
                c->done = true;
                return;
        }
        client_publish_window(c);
}

static int client_new(const Options *o, Worker *w, const char *id, const char *key, Client **ret) {
        _cleanup_(client_freep) Client *c = NULL;
        _cleanup_free_ char *username = NULL, *password = NULL, *resource = NULL;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->worker = w;
        c->connack = -1;
        c->rng = 0x9e3779b97f4a7c15ull ^ (uint64_t) (uintptr_t) c;
        c->id = strdup(id);
        c->key = key ? strdup(key) : NULL;
        c->sent_at = calloc(MID_SLOTS, sizeof(uint32_t));
        if (!c->id || (key && !c->key) || !c->sent_at)
                return -ENOMEM;
        if (asprintf(&c->topic, "devices/%s/messages/events/", id) < 0 ||
            asprintf(&username, "%s/%s/?api-version=" API_VERSION, o->hub_name, id) < 0) {
                c->topic = username = NULL;
                return -ENOMEM;
        }
        if (key) {
                if (asprintf(&resource, "%s/devices/%s", o->audience ?: o->hub_name, id) < 0) {
                        resource = NULL;
                        return -ENOMEM;
                }
                r = sas_token_mint(resource, key, (uint64_t) time(NULL) + 24 * 3600, &password);
                if (r < 0)
                        return r;
        }

        c->mosq = mosquitto_new(id, true, c);
        if (!c->mosq)
                return -ENOMEM;
        mosquitto_connect_callback_set(c->mosq, on_connect);
        mosquitto_disconnect_callback_set(c->mosq, on_disconnect);
        mosquitto_publish_callback_set(c->mosq, on_publish);
        if (mosquitto_int_option(c->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311) != MOSQ_ERR_SUCCESS ||
            mosquitto_int_option(c->mosq, MOSQ_OPT_SEND_MAXIMUM, (int) o->inflight) != MOSQ_ERR_SUCCESS ||
            mosquitto_username_pw_set(c->mosq, username, password ?: "unused") != MOSQ_ERR_SUCCESS)
                return -EINVAL;
        if (o->ca_file && mosquitto_tls_set(c->mosq, o->ca_file, NULL, NULL, NULL, NULL) != MOSQ_ERR_SUCCESS)
                return -EINVAL;

        *ret = TAKE_PTR(c);
        return 0;
}

static void client_connect(Client *c) {
        const Options *o = c->worker->options;
        int r;

        /* Blocking TCP connect only: the TLS handshake and CONNECT continue in the poll loop. */
        r = c->connack < 0 && c->retry_at == 0 ? mosquitto_connect(c->mosq, o->host, (int) o->port, (int) o->keepalive)
                                                : mosquitto_reconnect(c->mosq);
        c->retry_at = r == MOSQ_ERR_SUCCESS ? 0 : now_sec() + 0.2;
        if (r != MOSQ_ERR_SUCCESS && !o->quiet)
                fprintf(stderr, "loadgen: connect %s: %s\n", c->id, mosquitto_strerror(r));
}

static void client_lost(Client *c) {
        if (c->retry_at == 0)
                c->retry_at = now_sec() + 0.1;
}

static bool worker_done(Worker *w) {
        for (size_t i = 0; i < w->n_clients; i++)
                if (!w->clients[i]->done)
                        return false;
        return true;
}

static void *worker_run(void *userdata) {
        Worker *w = userdata;
        _cleanup_free_ struct pollfd *fds = calloc(w->n_clients, sizeof(*fds));
        _cleanup_free_ Client **polled = calloc(w->n_clients, sizeof(*polled));
        double next_misc = 0;

        if (!fds || !polled)
                return NULL;

        while (!atomic_load(&stop)) {
                double now = now_sec();
                size_t n = 0;

                if (!w->started && atomic_load(&go)) {
                        w->started = true;
                        for (size_t i = 0; i < w->n_clients; i++)
                                if (w->clients[i]->connack == 0)
                                        client_publish_window(w->clients[i]);
                }
                if (w->started && worker_done(w))
                        break;

                for (size_t i = 0; i < w->n_clients; i++) {
                        Client *c = w->clients[i];
                        int fd;

                        if (c->retry_at != 0 && now >= c->retry_at && !c->done)
                                client_connect(c);
                        fd = mosquitto_socket(c->mosq);
                        if (fd < 0) {
                                client_lost(c);
                                continue;
                        }
                        fds[n] = (struct pollfd) {
                                .fd = fd,
                                .events = POLLIN | (mosquitto_want_write(c->mosq) ? POLLOUT : 0),
                        };
                        polled[n++] = c;
                }

                if (poll(fds, n, w->started ? 50 : 10) < 0 && errno != EINTR)
                        break;

                for (size_t i = 0; i < n; i++) {
                        Client *c = polled[i];
                        int r = MOSQ_ERR_SUCCESS;

                        if (fds[i].revents & (POLLIN | POLLERR | POLLHUP))
                                r = mosquitto_loop_read(c->mosq, 1);
                        if (r == MOSQ_ERR_SUCCESS && (fds[i].revents & POLLOUT))
                                r = mosquitto_loop_write(c->mosq, 1);
                        /* Answers queued by callbacks go out now rather than after the next poll. */
                        if (r == MOSQ_ERR_SUCCESS && mosquitto_want_write(c->mosq))
                                r = mosquitto_loop_write(c->mosq, 1);
                        if (r != MOSQ_ERR_SUCCESS)
                                client_lost(c);
                }

                if (now >= next_misc) {
                        for (size_t i = 0; i < w->n_clients; i++)
                                if (mosquitto_socket(w->clients[i]->mosq) >= 0)
                                        (void) mosquitto_loop_misc(w->clients[i]->mosq);
                        next_misc = now + 1.0;
                }
        }
        return NULL;
}

static int ids_load(const Options *o, char ***ret_ids, char ***ret_keys, size_t *ret_n) {
        _cleanup_free_ char *line = NULL;
        char **ids = NULL, **keys = NULL;
        size_t n = 0, cap = 0, len = 0;
        FILE *f;

        if (!o->ids_file) {
                ids = calloc(o->count, sizeof(char *));
                keys = calloc(o->count, sizeof(char *));
                if (!ids || !keys)
                        return -ENOMEM;
                for (n = 0; n < o->count; n++)
                        if (asprintf(&ids[n], "%s%zu", o->prefix, n) < 0)
                                return -ENOMEM;
                *ret_ids = ids;
                *ret_keys = keys;
                *ret_n = n;
                return 0;
        }

        f = fopen(o->ids_file, "re");
        if (!f)
                return -errno;
        /* One device a line: "id" or "id,base64key"; '#' starts a comment. */
        while (getline(&line, &len, f) > 0) {
                char *s = line, *comma;

                s[strcspn(s, "\r\n")] = 0;
                if (!*s || *s == '#')
                        continue;
                if (n == cap) {
                        cap = cap ? cap * 2 : 64;
                        ids = realloc(ids, cap * sizeof(char *));
                        keys = realloc(keys, cap * sizeof(char *));
                        if (!ids || !keys) {
                                fclose(f);
                                return -ENOMEM;
                        }
                }
                comma = strchr(s, ',');
                if (comma)
                        *comma++ = 0;
                ids[n] = strdup(s);
                keys[n] = comma && *comma ? strdup(comma) : NULL;
                n++;
                if (o->count && n == o->count)
                        break;
        }
        fclose(f);
        if (n == 0)
                return -ENODATA;
        *ret_ids = ids;
        *ret_keys = keys;
        *ret_n = n;
        return 0;
}

static void help(void) {
        printf("edgehub-loadgen [OPTIONS]\n"
               "Connects many IoT Hub devices (MQTT 3.1.1, TLS) in one process and publishes QoS 1 telemetry.\n"
               "Prints one JSON line of figures on stdout.\n\n"
               "  --host HOST            broker address (127.0.0.1)\n"
               "  --port PORT            broker port (8883)\n"
               "  --ca-file FILE         CA for TLS; without it, plain TCP\n"
               "  --hub-name NAME        {hub} in the username (bench.azure-devices.net)\n"
               "  --audience HOST        host in the SAS resource (default: hub name)\n"
               "  --ids FILE             devices, one a line: id[,base64 key]; without a key any password\n"
               "  --devices N            with --ids: the first N; without: N devices {prefix}0..{prefix}N-1 (20)\n"
               "  --prefix P             device id prefix without --ids (bench-)\n"
               "  --messages M           messages per device (1000)\n"
               "  --payload BYTES        payload size (256)\n"
               "  --inflight N           unacknowledged messages per device (100)\n"
               "  --compressible         payloads of 'x' (default: random printable, incompressible)\n"
               "  --threads N            worker threads polling the connections (1)\n"
               "  --connect-timeout SEC  wait this long for all CONNACKs (30)\n"
               "  --timeout SEC          give up publishing after this long (600)\n"
               "  --quiet                no progress on stderr\n");
}

static int parse_argv(int argc, char **argv, Options *o) {
        enum { ARG_HOST = 0x100, ARG_PORT, ARG_CA, ARG_HUB, ARG_AUD, ARG_IDS, ARG_DEVICES, ARG_PREFIX,
               ARG_MESSAGES, ARG_PAYLOAD, ARG_INFLIGHT, ARG_THREADS, ARG_CTIMEOUT, ARG_TIMEOUT, ARG_COMPRESSIBLE, ARG_QUIET };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "host", required_argument, NULL, ARG_HOST },
                { "port", required_argument, NULL, ARG_PORT },
                { "ca-file", required_argument, NULL, ARG_CA },
                { "hub-name", required_argument, NULL, ARG_HUB },
                { "audience", required_argument, NULL, ARG_AUD },
                { "ids", required_argument, NULL, ARG_IDS },
                { "devices", required_argument, NULL, ARG_DEVICES },
                { "prefix", required_argument, NULL, ARG_PREFIX },
                { "messages", required_argument, NULL, ARG_MESSAGES },
                { "payload", required_argument, NULL, ARG_PAYLOAD },
                { "inflight", required_argument, NULL, ARG_INFLIGHT },
                { "threads", required_argument, NULL, ARG_THREADS },
                { "connect-timeout", required_argument, NULL, ARG_CTIMEOUT },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "compressible", no_argument, NULL, ARG_COMPRESSIBLE },
                { "quiet", no_argument, NULL, ARG_QUIET },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_HOST: o->host = optarg; break;
                case ARG_PORT: o->port = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_CA: o->ca_file = optarg; break;
                case ARG_HUB: o->hub_name = optarg; break;
                case ARG_AUD: o->audience = optarg; break;
                case ARG_IDS: o->ids_file = optarg; break;
                case ARG_DEVICES: o->count = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_PREFIX: o->prefix = optarg; break;
                case ARG_MESSAGES: o->messages = strtoull(optarg, NULL, 10); break;
                case ARG_PAYLOAD: o->payload = strtoul(optarg, NULL, 10); break;
                case ARG_INFLIGHT: o->inflight = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_THREADS: o->threads = (unsigned) strtoul(optarg, NULL, 10); break;
                case ARG_CTIMEOUT: o->connect_timeout = strtod(optarg, NULL); break;
                case ARG_TIMEOUT: o->timeout = strtod(optarg, NULL); break;
                case ARG_COMPRESSIBLE: o->compressible = true; break;
                case ARG_QUIET: o->quiet = true; break;
                default:
                        return -EINVAL;
                }
        if (optind < argc || o->port == 0 || o->port > 65535 || o->messages == 0 || o->inflight == 0 ||
            o->inflight > 65535 || o->threads == 0 || o->payload > 262144 ) {
                fprintf(stderr, "loadgen: invalid arguments (see --help)\n");
                return -EINVAL;
        }
        return 1;
}

static double cpu_seconds(void) {
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) < 0)
                return 0;
        return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 +
               (double) ru.ru_stime.tv_sec + (double) ru.ru_stime.tv_usec / 1e6;
}

typedef struct Loadgen {
        Options options;
        char **ids;
        char **keys;
        size_t n;
        Client **clients;
        Worker *workers;
        double t_connect, t_start, t_end, cpu_start, cpu_end;
} Loadgen;

static void loadgen_done(Loadgen *lg) {
        for (size_t i = 0; i < lg->n; i++) {
                if (lg->clients && lg->clients[i]) {
                        if (lg->clients[i]->connack == 0)
                                (void) mosquitto_disconnect(lg->clients[i]->mosq);
                        client_free(lg->clients[i]);
                }
                free(lg->ids[i]);
                free(lg->keys[i]);
        }
        for (unsigned t = 0; lg->workers && t < lg->options.threads; t++)
                free(lg->workers[t].clients);
        free(lg->workers);
        free(lg->clients);
        free(lg->ids);
        free(lg->keys);
}

/* Clients are dealt round-robin to the workers; each worker owns its clients alone. */
static int loadgen_setup(Loadgen *lg) {
        const Options *o = &lg->options;
        int r;

        lg->clients = calloc(lg->n, sizeof(Client *));
        lg->workers = calloc(o->threads, sizeof(Worker));
        if (!lg->clients || !lg->workers)
                return -ENOMEM;
        for (unsigned t = 0; t < o->threads; t++) {
                lg->workers[t].options = o;
                lg->workers[t].clients = calloc(lg->n / o->threads + 1, sizeof(Client *));
                if (!lg->workers[t].clients)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < lg->n; i++) {
                Worker *w = &lg->workers[i % o->threads];

                r = client_new(o, w, lg->ids[i], lg->keys[i], &lg->clients[i]);
                if (r < 0) {
                        fprintf(stderr, "loadgen: client %s: %s\n", lg->ids[i], strerror(-r));
                        return r;
                }
                w->clients[w->n_clients++] = lg->clients[i];
        }
        return 0;
}

static void sleep_ms(long ms) {
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000 * 1000 };

        (void) nanosleep(&ts, NULL);
}

/* Connects everything, starts the workers and waits for every CONNACK (or the connect timeout). */
static int loadgen_connect(Loadgen *lg) {
        const Options *o = &lg->options;

        lg->t_connect = now_sec();
        for (size_t i = 0; i < lg->n; i++)
                client_connect(lg->clients[i]);
        for (unsigned t = 0; t < o->threads; t++)
                if (pthread_create(&lg->workers[t].thread, NULL, worker_run, &lg->workers[t]) != 0)
                        return -EAGAIN;
        while (atomic_load(&connacks_ok) + atomic_load(&connacks_refused) < lg->n &&
               now_sec() - lg->t_connect < o->connect_timeout)
                sleep_ms(5);
        /* run-bench.py starts its CPU meters on this line: keep it, even with --quiet. */
        fprintf(stderr, "loadgen: %" PRIuFAST64 "/%zu connected (%" PRIuFAST64 " refused) in %.2fs\n",
                atomic_load(&connacks_ok), lg->n, atomic_load(&connacks_refused), now_sec() - lg->t_connect);
        return 0;
}

/* Releases the workers and waits until every connected client's messages are acknowledged. */
static void loadgen_publish(Loadgen *lg) {
        const Options *o = &lg->options;
        uint64_t want = atomic_load(&connacks_ok) * o->messages;
        double last_report;

        lg->t_start = last_report = now_sec();
        lg->cpu_start = cpu_seconds();
        atomic_store(&go, true);
        while (want > 0 && atomic_load(&total_acked) < want && now_sec() - lg->t_start < o->timeout) {
                sleep_ms(2);
                if (!o->quiet && now_sec() - last_report >= 5.0) {
                        last_report = now_sec();
                        fprintf(stderr, "loadgen: %" PRIuFAST64 "/%" PRIu64 " acked, %.0f msg/s\n",
                                atomic_load(&total_acked), want,
                                (double) atomic_load(&total_acked) / (last_report - lg->t_start));
                }
        }
        lg->t_end = now_sec();
        lg->cpu_end = cpu_seconds();
        atomic_store(&stop, true);
        for (unsigned t = 0; t < o->threads; t++)
                (void) pthread_join(lg->workers[t].thread, NULL);
}

/* One JSON line on stdout; returns how many messages were acknowledged. */
static uint64_t loadgen_report(const Loadgen *lg) {
        const Options *o = &lg->options;
        uint64_t hist[HIST_BUCKETS] = {}, sent = 0, acked = 0, disconnects = 0, publish_errors = 0, done = 0;
        double seconds = lg->t_end - lg->t_start;
        json_t *out;

        for (unsigned t = 0; t < o->threads; t++) {
                for (unsigned b = 0; b < HIST_BUCKETS; b++)
                        hist[b] += lg->workers[t].hist[b];
                disconnects += lg->workers[t].disconnects;
                publish_errors += lg->workers[t].publish_errors;
        }
        for (size_t i = 0; i < lg->n; i++) {
                sent += lg->clients[i]->sent;
                acked += lg->clients[i]->acked;
                done += lg->clients[i]->done && lg->clients[i]->connack == 0;
        }

        out = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:I, s:I, "
                        "s:{s:f, s:f, s:f, s:f}}",
                        "devices", (json_int_t) lg->n,
                        "connected", (json_int_t) atomic_load(&connacks_ok),
                        "refused", (json_int_t) atomic_load(&connacks_refused),
                        "messages_per_device", (json_int_t) o->messages,
                        "payload", (json_int_t) o->payload,
                        "sent", (json_int_t) sent,
                        "acked", (json_int_t) acked,
                        "devices_done", (json_int_t) done,
                        "connect_seconds", lg->t_start - lg->t_connect,
                        "seconds", seconds,
                        "msgs_per_s", seconds > 0 ? (double) acked / seconds : 0.0,
                        "cpu_seconds", lg->cpu_end - lg->cpu_start,
                        "disconnects", (json_int_t) disconnects,
                        "publish_errors", (json_int_t) publish_errors,
                        "ack_latency_ms",
                        "p50", hist_quantile_ms(hist, acked, 0.50),
                        "p90", hist_quantile_ms(hist, acked, 0.90),
                        "p99", hist_quantile_ms(hist, acked, 0.99),
                        "max", hist_quantile_ms(hist, acked, 1.0));
        if (out) {
                (void) json_dumpf(out, stdout, JSON_COMPACT);
                fputc('\n', stdout);
                fflush(stdout);
                json_decref(out);
        }
        return acked;
}

int main(int argc, char **argv) {
        _cleanup_(loadgen_done) Loadgen lg = {
                .options = {
                        .host = "127.0.0.1", .port = 8883, .hub_name = "bench.azure-devices.net", .prefix = "bench-",
                        .messages = 1000, .payload = 256, .inflight = 100, .threads = 1, .keepalive = 60,
                        .connect_timeout = 30, .timeout = 600,
                },
        };
        Options *o = &lg.options;
        uint64_t acked;
        int r;

        r = parse_argv(argc, argv, o);
        if (r <= 0)
                return r < 0 ? 2 : 0;
        /* With --ids, --devices means "the first N" and no limit by default. */
        if (!o->ids_file && o->count == 0)
                o->count = 20;

        r = ids_load(o, &lg.ids, &lg.keys, &lg.n);
        if (r < 0) {
                fprintf(stderr, "loadgen: cannot read devices: %s\n", strerror(-r));
                return 2;
        }
        if (o->threads > lg.n)
                o->threads = (unsigned) lg.n;

        mosquitto_lib_init();
        t_zero = now_sec();
        r = loadgen_setup(&lg);
        if (r >= 0)
                r = loadgen_connect(&lg);
        if (r < 0) {
                fprintf(stderr, "loadgen: setup failed: %s\n", strerror(-r));
                return 2;
        }
        loadgen_publish(&lg);
        acked = loadgen_report(&lg);
        return acked == (uint64_t) lg.n * o->messages ? 0 : 1;
}
