/* The one configuration file shared by every edgehub process (YAML) */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "proto/iothub/iot-identity.h"
#include "proto/iothub/route.h"
#include "proto/runtime/config.h"
#include "proto/runtime/log.h"
#include "proto/util/base64.h"
#include "proto/util/cleanup.h"
#include "proto/util/number.h"
#include "proto/util/shown.h"

/*
 * Every setting is one row of config_items[]: its dotted key, its type and
 * where it lives in Config. The YAML document is walked once; a scalar whose
 * dotted path names a row goes through that row's typed parser. Defaults are
 * strings run through the same parsers, so a default can never be a value the
 * file could not hold. Errors are one line "FILE:LINE:COL: key 'a.b': ...".
 * The one exception is routes:, a map of names the user chooses, walked by
 * parse_routes() into RouteSpecs (it stays here: libyaml enters through this file).
 */

#define KIB UINT64_C(1024)
#define MIB (KIB * 1024)
#define GIB (MIB * 1024)
#define TIB (GIB * 1024)
#define WARNINGS_MAX 32u

typedef struct ConfigType {
        const char *what;        /* "invalid size": the error, before the quoted value */
        int (*parse)(const char *s, void *field);
        bool string;             /* the field is a char * that Config owns */
        bool secret;             /* never echo the value */
} ConfigType;

typedef struct ConfigItem {
        const char *key;
        const ConfigType *type;
        size_t offset;
        const char *def;         /* parsed like a value from the file; NULL = none (or derived) */
        bool required;
} ConfigItem;

/* ---- typed parsers: each exists once ---- */

static int set_string(void *field, const char *s) {
        return free_and_strdup(field, s);
}

static int parse_string(const char *s, void *field) {
        if (!*s)
                return -EINVAL;
        return set_string(field, s);
}

static int parse_path(const char *s, void *field) {
        if (s[0] != '/')
                return -EINVAL;
        return set_string(field, s);
}

static int parse_id(const char *s, void *field) {
        if (!iot_id_is_valid(s))
                return -EINVAL;
        return set_string(field, s);
}

static int parse_host(const char *s, void *field) {
        size_t n = strlen(s);

        if (n == 0 || n > 255 || s[0] == '.' || s[0] == '-')
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
                      s[i] == '.' || s[i] == '-' || s[i] == '_'))
                        return -EINVAL;
        return set_string(field, s);
}

/* A group name as useradd takes it; "" = no group. */
static int parse_group(const char *s, void *field) {
        size_t n = strlen(s);

        if (n > 32 || (n > 0 && !((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')))
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
                        return -EINVAL;
        return set_string(field, s);
}

/*
 * "FIRST-LAST": the uids (and gids, the same numbers) modules run as. Above
 * 65535, so that neither a Debian system or login account (below 60000),
 * nor nobody (65534), nor systemd's DynamicUser= range (61184-65519) is in it;
 * below 2^31 so no tool mistakes it for a negative number; at most 65536 ids.
 */
static int parse_uid_range(const char *s, void *field) {
        const char *dash = strchr(s, '-');
        uint64_t first, last;

        if (!dash || parse_u64(s, (size_t) (dash - s), &first) < 0 || parse_u64(dash + 1, strlen(dash + 1), &last) < 0)
                return -EINVAL;
        if (first <= 65535 || last < first || last >= (UINT64_C(1) << 31) || last - first >= 65536)
                return -EINVAL;
        *(UidRange *) field = (UidRange){ (uint32_t) first, (uint32_t) last };
        return 0;
}

static int parse_key(const char *s, void *field) {
        _cleanup_free_ uint8_t *key = NULL;
        size_t len;

        if (base64_decode(s, strlen(s), &key, &len) < 0 || len < 16 || len > 64)
                return -EINVAL;
        return set_string(field, s);
}

static int parse_port_value(const char *s, bool allow_zero, void *field) {
        uint64_t v;

        if (parse_u64(s, strlen(s), &v) < 0 || v > 65535 || (v == 0 && !allow_zero))
                return -EINVAL;
        *(uint16_t *) field = (uint16_t) v;
        return 0;
}

/* Upstream connections opened per second: IoT Hub throttles connect storms (S1: 100/s per unit). */
static int parse_connect_rate(const char *s, void *field) {
        uint64_t v;

        if (parse_u64(s, strlen(s), &v) < 0 || v < 1 || v > 1000)
                return -EINVAL;
        *(uint32_t *) field = (uint32_t) v;
        return 0;
}

static int parse_port(const char *s, void *field) {
        return parse_port_value(s, false, field);
}

static int parse_port_or_off(const char *s, void *field) {
        return parse_port_value(s, true, field);
}

typedef struct Unit {
        const char *suffix;
        uint64_t factor;
} Unit;

/* "1048576", "100KiB", "10MB", "512 MiB", "1GiB" */
static int parse_bytes(const char *s, void *field) {
        static const Unit units[] = {
                { "", 1 },           { "B", 1 },
                { "KB", 1000 },      { "MB", 1000000 },      { "GB", 1000000000 }, { "TB", UINT64_C(1000000000000) },
                { "KiB", KIB },      { "MiB", MIB },         { "GiB", GIB },       { "TiB", TIB },
        };
        size_t n = strspn(s, "0123456789");
        uint64_t v;

        if (parse_u64(s, n, &v) < 0)
                return -EINVAL;
        const char *u = s + n;
        if (*u == ' ')
                u++;
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (strcmp(u, units[i].suffix) != 0 || (!*u && u != s + n))
                        continue;
                if (v > UINT64_MAX / units[i].factor)
                        return -EINVAL;
                *(uint64_t *) field = v * units[i].factor;
                return 0;
        }
        return -EINVAL;
}

/* "7200" (seconds), "2h", "30m", "10s", "500ms", "1d", and sums such as "1h30m", in milliseconds. */
static int parse_duration_msec(const char *s, uint64_t *ret) {
        static const Unit units[] = {
                /* "ms" before "m" and "min" before "m": the longest suffix wins. */
                { "ms", 1 }, { "min", 60000 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
        };
        uint64_t total = 0, v;
        size_t n = strspn(s, "0123456789");

        if (n == 0)
                return -EINVAL;
        if (!s[n]) {
                if (parse_u64(s, n, &v) < 0 || v > UINT64_MAX / 1000)
                        return -EINVAL;
                *ret = v * 1000;
                return 0;
        }

        for (const char *p = s; *p;) {
                n = strspn(p, "0123456789");
                if (parse_u64(p, n, &v) < 0)
                        return -EINVAL;
                p += n;

                const Unit *unit = NULL;
                for (size_t i = 0; i < ELEMENTSOF(units) && !unit; i++)
                        if (strncmp(p, units[i].suffix, strlen(units[i].suffix)) == 0)
                                unit = &units[i];
                if (!unit)
                        return -EINVAL;
                p += strlen(unit->suffix);
                if (v > UINT64_MAX / unit->factor || total > UINT64_MAX - v * unit->factor)
                        return -EINVAL;
                total += v * unit->factor;
        }
        *ret = total;
        return 0;
}

static int parse_sec(const char *s, void *field) {
        uint64_t msec;

        if (parse_duration_msec(s, &msec) < 0 || msec % 1000 != 0)
                return -EINVAL;
        *(uint64_t *) field = msec / 1000;
        return 0;
}

static int parse_msec(const char *s, void *field) {
        return parse_duration_msec(s, (uint64_t *) field);
}

static int parse_overflow(const char *s, void *field) {
        OverflowPolicy p = overflow_policy_from_string(s);
        if (p < 0)
                return -EINVAL;
        *(OverflowPolicy *) field = p;
        return 0;
}

static int parse_sync(const char *s, void *field) {
        SyncPolicy p = sync_policy_from_string(s);
        if (p < 0)
                return -EINVAL;
        *(SyncPolicy *) field = p;
        return 0;
}


static int parse_log_level(const char *s, void *field) {
        int l = log_level_from_string(s);
        if (l < 0)
                return -EINVAL;
        *(int *) field = l;
        return 0;
}

static const ConfigType type_string = { "invalid value", parse_string, .string = true };
static const ConfigType type_path = { "not an absolute path", parse_path, .string = true };
static const ConfigType type_id = { "invalid IoT Hub id", parse_id, .string = true };
static const ConfigType type_host = { "invalid host name", parse_host, .string = true };
static const ConfigType type_key = { "invalid key (must be base64 of 16..64 bytes)", parse_key, .string = true,
                                     .secret = true };
static const ConfigType type_group = { "invalid group name", parse_group, .string = true };
static const ConfigType type_uid_range = { "invalid uid range (FIRST-LAST, 65536..2147483647, at most 65536 ids)",
                                           parse_uid_range };
static const ConfigType type_port = { "invalid port", parse_port };
static const ConfigType type_port_or_off = { "invalid port", parse_port_or_off };
static const ConfigType type_connect_rate = { "invalid rate (1..1000 connections per second)", parse_connect_rate };
static const ConfigType type_bytes = { "invalid size", parse_bytes };
static const ConfigType type_sec = { "invalid duration", parse_sec };
static const ConfigType type_msec = { "invalid duration", parse_msec };
static const ConfigType type_overflow = { "invalid overflow policy (drop_oldest, reject_new)", parse_overflow };
static const ConfigType type_sync = { "invalid sync policy (periodic, always)", parse_sync };
static const ConfigType type_log_level = { "invalid log level (error, warning, notice, info, debug)", parse_log_level };

#define ITEM(k, t, f, d) { .key = (k), .type = &(t), .offset = offsetof(Config, f), .def = (d) }
#define REQUIRED(k, t, f) { .key = (k), .type = &(t), .offset = offsetof(Config, f), .required = true }

/* Keep in step with config.h and config.example.yaml. */
static const ConfigItem config_items[] = {
        REQUIRED("edge.device_id", type_id, edge_device_id),
        REQUIRED("edge.hub_hostname", type_host, hub_hostname),
        ITEM("edge.gateway_hostname", type_host, gateway_hostname, NULL), /* derived: hub_hostname */
        REQUIRED("edge.edgehub_key", type_key, edgehub_key),

        ITEM("upstream.host", type_host, upstream_host, NULL),            /* derived: hub_hostname */
        ITEM("upstream.mqtt_port", type_port, upstream_mqtt_port, "8883"),
        ITEM("upstream.https_port", type_port, upstream_https_port, "443"),
        ITEM("upstream.ca_file", type_path, upstream_ca_file, NULL),
        ITEM("upstream.scope_refresh", type_sec, scope_refresh_sec, "1h"),
        ITEM("upstream.idle_timeout", type_sec, idle_timeout_sec, "5m"),
        ITEM("upstream.token_ttl", type_sec, token_ttl_sec, "1h"),
        ITEM("upstream.connect_rate", type_connect_rate, connect_rate, "20"),

        ITEM("listeners.tls.port", type_port_or_off, tls_port, "8883"),
        ITEM("listeners.tls.bind", type_string, tls_bind, "0.0.0.0"),
        ITEM("listeners.tls.cert_file", type_path, tls_cert_file, NULL),
        ITEM("listeners.tls.key_file", type_path, tls_key_file, NULL),
        ITEM("listeners.tls.client_ca_file", type_path, tls_client_ca_file, NULL),
        ITEM("listeners.plain.port", type_port_or_off, plain_port, "0"),
        ITEM("listeners.plain.bind", type_string, plain_bind, "127.0.0.1"),
        ITEM("listeners.max_token_lifetime", type_sec, max_token_lifetime_sec, "365d"),

        ITEM("methods.port", type_port_or_off, methods_port, NULL), /* derived: 443 with a TLS cert, else off */
        ITEM("methods.bind", type_string, methods_bind, "0.0.0.0"),

        ITEM("storage.dir", type_path, storage_dir, "/var/lib/edgehub"),
        ITEM("storage.max_bytes", type_bytes, max_bytes, "1GiB"),
        ITEM("storage.overflow", type_overflow, overflow, "drop_oldest"),
        ITEM("storage.sync", type_sync, sync, "periodic"),
        ITEM("storage.sync_interval", type_msec, sync_interval_msec, "1s"),
        ITEM("storage.twin_queue_max_bytes", type_bytes, twin_queue_max_bytes, "256KiB"),

        ITEM("store_and_forward.time_to_live", type_sec, ttl_sec, "2h"),

        ITEM("metrics.port", type_port_or_off, metrics_port, "0"),
        ITEM("metrics.address", type_string, metrics_address, "127.0.0.1"),

        ITEM("agent.ca_file", type_path, agent_ca_file, NULL),
        ITEM("agent.gateway_hostname", type_host, agent_gateway_hostname, NULL), /* derived: gateway_hostname */
        ITEM("agent.module_uids", type_uid_range, module_uids, "620000-629999"),
        ITEM("agent.modules_dir", type_path, modules_dir, NULL), /* derived: storage.dir + "-modules" */

        ITEM("access.read_group", type_group, access_read_group, "adm"),
        ITEM("access.admin_group", type_group, access_admin_group, "sudo"),

        ITEM("runtime_dir", type_path, runtime_dir, "/run/edgehub"),
        ITEM("log_level", type_log_level, log_level, "info"),

        ITEM("runner.mosquitto", type_path, mosquitto_path, "/usr/sbin/mosquitto"),
        ITEM("runner.user", type_group, runner_user, "edgehub"), /* user names follow the same rule */
        ITEM("runner.libexec_dir", type_path, libexec_dir, NULL), /* the runner fills it */
        ITEM("runner.plugin", type_path, plugin_path, NULL),      /* the runner fills it */
};

#define N_ITEMS ELEMENTSOF(config_items)

static void *item_field(Config *c, const ConfigItem *item) {
        return (uint8_t *) c + item->offset;
}

static const ConfigItem *item_find(const char *key) {
        for (size_t i = 0; i < N_ITEMS; i++)
                if (strcmp(config_items[i].key, key) == 0)
                        return &config_items[i];
        return NULL;
}

/* Is there a key under "prefix."? */
static bool item_has_prefix(const char *prefix) {
        size_t n = strlen(prefix);
        for (size_t i = 0; i < N_ITEMS; i++)
                if (strncmp(config_items[i].key, prefix, n) == 0 && config_items[i].key[n] == '.')
                        return true;
        return false;
}

/* ---- enums ---- */

static const char *const overflow_policy_table[_OVERFLOW_POLICY_MAX] = {
        [OVERFLOW_DROP_OLDEST] = "drop_oldest",
        [OVERFLOW_REJECT_NEW] = "reject_new",
};

static const char *const sync_policy_table[_SYNC_POLICY_MAX] = {
        [SYNC_PERIODIC] = "periodic",
        [SYNC_ALWAYS] = "always",
};

static int string_table_lookup(const char *const *table, size_t n, const char *s) {
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (table[i] && strcmp(table[i], s) == 0)
                        return (int) i;
        return -EINVAL;
}

const char *overflow_policy_to_string(OverflowPolicy p) {
        return p >= 0 && p < _OVERFLOW_POLICY_MAX ? overflow_policy_table[p] : NULL;
}

OverflowPolicy overflow_policy_from_string(const char *s) {
        return (OverflowPolicy) string_table_lookup(overflow_policy_table, _OVERFLOW_POLICY_MAX, s);
}

const char *sync_policy_to_string(SyncPolicy p) {
        return p >= 0 && p < _SYNC_POLICY_MAX ? sync_policy_table[p] : NULL;
}

SyncPolicy sync_policy_from_string(const char *s) {
        return (SyncPolicy) string_table_lookup(sync_policy_table, _SYNC_POLICY_MAX, s);
}

/* ---- the parser ---- */

typedef struct ConfigParser {
        const char *name;
        Config *config;
        bool set[N_ITEMS];
        yaml_mark_t marks[N_ITEMS];
        char *error;
        char *warnings;
        unsigned n_warnings;
        bool routes_set;
        yaml_mark_t routes_mark;
} ConfigParser;

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < N_ITEMS; i++)
                if (config_items[i].type->string)
                        free(*(char **) item_field(c, &config_items[i]));
        route_specs_deinit(&c->routes);
        free(c->source);
        free(c);
        return NULL;
}

static int parser_fail(ConfigParser *p, const yaml_mark_t *mark, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* Records the first error only; returns -EINVAL (or -ENOMEM). */
static int parser_fail(ConfigParser *p, const yaml_mark_t *mark, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        if (p->error)
                return -EINVAL;
        va_start(ap, fmt);
        int r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        if (r < 0) {
                msg = NULL;
                return -ENOMEM;
        }
        if (mark)
                r = asprintf(&p->error, "%s:%zu:%zu: %s", p->name, mark->line + 1, mark->column + 1, msg);
        else
                r = asprintf(&p->error, "%s: %s", p->name, msg);
        if (r < 0) {
                p->error = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

static int parser_warn(ConfigParser *p, const yaml_mark_t *mark, const char *key) {
        char quoted[SHOWN_MAX + 4];
        char *w;
        int r;

        if (++p->n_warnings > WARNINGS_MAX)
                return 0;
        shown(key, quoted);
        if (p->n_warnings == WARNINGS_MAX)
                r = asprintf(&w, "%s%s%s: more unknown keys, ignoring", p->warnings ?: "", p->warnings ? "\n" : "",
                             p->name);
        else
                r = asprintf(&w, "%s%s%s:%zu:%zu: unknown key '%s', ignoring", p->warnings ?: "",
                             p->warnings ? "\n" : "", p->name, mark->line + 1, mark->column + 1, quoted);
        if (r < 0)
                return -ENOMEM;
        free(p->warnings);
        p->warnings = w;
        return 0;
}

static const char *node_kind(const yaml_node_t *n) {
        switch (n->type) {
        case YAML_SCALAR_NODE:
                return "a scalar";
        case YAML_SEQUENCE_NODE:
                return "a sequence";
        case YAML_MAPPING_NODE:
                return "a mapping";
        default:
                return "nothing";
        }
}

/* "~", "null" or nothing at all: the key is as good as absent (its default applies). */
static bool scalar_is_null(const yaml_node_t *n) {
        const char *v = (const char *) n->data.scalar.value;
        if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
               strcmp(v, "NULL") == 0;
}

static int parser_set(ConfigParser *p, const ConfigItem *item, const yaml_node_t *value) {
        size_t idx = (size_t) (item - config_items);
        char quoted[SHOWN_MAX + 4];

        if (p->set[idx])
                return parser_fail(p, &value->start_mark, "key '%s': duplicate (first set at line %zu)", item->key,
                                   p->marks[idx].line + 1);
        if (value->type != YAML_SCALAR_NODE)
                return parser_fail(p, &value->start_mark, "key '%s': expected a scalar, got %s", item->key,
                                   node_kind(value));

        p->set[idx] = true;
        p->marks[idx] = value->start_mark;
        if (scalar_is_null(value))
                return 0;

        const char *s = (const char *) value->data.scalar.value;
        /* An embedded NUL ("\0" in a quoted scalar) would cut the value short unseen. */
        if (strlen(s) != value->data.scalar.length)
                return parser_fail(p, &value->start_mark, "key '%s': contains a NUL byte", item->key);
        int r = item->type->parse(s, item_field(p->config, item));
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (item->type->secret)
                        return parser_fail(p, &value->start_mark, "key '%s': %s", item->key, item->type->what);
                shown(s, quoted);
                return parser_fail(p, &value->start_mark, "key '%s': %s '%s'", item->key, item->type->what, quoted);
        }
        return 0;
}

/* ---- routes: a map of names the table above cannot list ---- */

/* A scalar value as a C string, refusing embedded NULs; NULL after recording an error. */
static const char *scalar_text(ConfigParser *p, const yaml_node_t *v, const char *key, int *r) {
        if (v->type != YAML_SCALAR_NODE) {
                *r = parser_fail(p, &v->start_mark, "key '%s': expected a scalar, got %s", key, node_kind(v));
                return NULL;
        }
        const char *s = (const char *) v->data.scalar.value;
        if (strlen(s) != v->data.scalar.length) {
                *r = parser_fail(p, &v->start_mark, "key '%s': contains a NUL byte", key);
                return NULL;
        }
        return s;
}

static int parse_route_number(ConfigParser *p, const yaml_node_t *v, const char *key, uint64_t max, uint64_t *ret) {
        char quoted[SHOWN_MAX + 4];
        int r = 0;

        const char *s = scalar_text(p, v, key, &r);
        if (!s)
                return r;
        if (parse_u64(s, strlen(s), ret) < 0 || *ret > max) {
                shown(s, quoted);
                return parser_fail(p, &v->start_mark, "key '%s': invalid number '%s' (0..%" PRIu64 ")", key, quoted,
                                   max);
        }
        return 0;
}

/* name: "FROM ..." or name: {route: "FROM ...", priority: 0..9, time_to_live_secs: N} */
static int parse_route(ConfigParser *p, yaml_document_t *doc, const char *name, const yaml_node_t *v) {
        _cleanup_free_ char *key = NULL;
        const yaml_node_t *text_node = v;
        uint64_t priority = ROUTE_PRIORITY_DEFAULT, ttl = 0;
        const char *text = NULL;
        int r = 0;

        if (asprintf(&key, "routes.%s", name) < 0) {
                key = NULL;
                return -ENOMEM;
        }
        if (v->type == YAML_MAPPING_NODE) {
                text_node = NULL;
                for (yaml_node_pair_t *pair = v->data.mapping.pairs.start; pair < v->data.mapping.pairs.top; pair++) {
                        yaml_node_t *k = yaml_document_get_node(doc, pair->key);
                        yaml_node_t *val = yaml_document_get_node(doc, pair->value);
                        _cleanup_free_ char *sub = NULL;

                        if (!k || !val)
                                return parser_fail(p, NULL, "broken YAML document");
                        if (k->type != YAML_SCALAR_NODE)
                                return parser_fail(p, &k->start_mark, "expected a key, got %s", node_kind(k));
                        const char *kn = (const char *) k->data.scalar.value;
                        if (asprintf(&sub, "%s.%s", key, kn) < 0) {
                                sub = NULL;
                                return -ENOMEM;
                        }
                        if (strcmp(kn, "route") == 0)
                                text_node = val;
                        else if (strcmp(kn, "priority") == 0)
                                r = parse_route_number(p, val, sub, ROUTE_PRIORITY_MAX, &priority);
                        else if (strcmp(kn, "time_to_live_secs") == 0)
                                r = parse_route_number(p, val, sub, UINT32_MAX, &ttl);
                        else
                                r = parser_warn(p, &k->start_mark, sub);
                        if (r < 0)
                                return r;
                }
                if (!text_node)
                        return parser_fail(p, &v->start_mark, "key '%s': missing 'route'", key);
        } else if (v->type != YAML_SCALAR_NODE || scalar_is_null(v))
                return parser_fail(p, &v->start_mark, "key '%s': expected a route or a mapping, got %s", key,
                                   v->type == YAML_SCALAR_NODE ? "nothing" : node_kind(v));

        text = scalar_text(p, text_node, key, &r);
        if (!text)
                return r;

        /* Refuse at startup what the route table would drop later. */
        _cleanup_(route_freep) Route *route = NULL;
        _cleanup_free_ char *error = NULL;
        r = route_parse(text, strlen(text), &route, &error);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return parser_fail(p, &text_node->start_mark, "key '%s': invalid route: %s", key,
                                   error ?: "syntax error");

        r = route_specs_add(&p->config->routes, name, text, (unsigned) priority, ttl);
        if (r == -EEXIST)
                return parser_fail(p, &v->start_mark, "key '%s': duplicate route name", key);
        if (r == -E2BIG)
                return parser_fail(p, &v->start_mark, "key '%s': more than %u routes", key, ROUTE_SPECS_MAX);
        return r;
}

static int parse_routes(ConfigParser *p, yaml_document_t *doc, const yaml_node_t *k, const yaml_node_t *v) {
        if (p->routes_set)
                return parser_fail(p, &k->start_mark, "key 'routes': duplicate (first set at line %zu)",
                                   p->routes_mark.line + 1);
        p->routes_set = true;
        p->routes_mark = k->start_mark;
        if (v->type == YAML_SCALAR_NODE && scalar_is_null(v)) {
                p->routes_set = false; /* "routes:" with nothing: the default */
                return 0;
        }
        if (v->type != YAML_MAPPING_NODE)
                return parser_fail(p, &v->start_mark, "key 'routes': expected a mapping, got %s", node_kind(v));

        for (yaml_node_pair_t *pair = v->data.mapping.pairs.start; pair < v->data.mapping.pairs.top; pair++) {
                yaml_node_t *rk = yaml_document_get_node(doc, pair->key);
                yaml_node_t *rv = yaml_document_get_node(doc, pair->value);
                char quoted[SHOWN_MAX + 4];
                int r = 0;

                if (!rk || !rv)
                        return parser_fail(p, NULL, "broken YAML document");
                const char *name = scalar_text(p, rk, "routes", &r);
                if (!name)
                        return r;
                if (!route_spec_name_is_valid(name)) {
                        shown(name, quoted);
                        return parser_fail(p, &rk->start_mark, "key 'routes': invalid route name '%s'", quoted);
                }
                r = parse_route(p, doc, name, rv);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parser_walk(ConfigParser *p, yaml_document_t *doc, const yaml_node_t *mapping, const char *prefix) {
        for (yaml_node_pair_t *pair = mapping->data.mapping.pairs.start; pair < mapping->data.mapping.pairs.top;
             pair++) {
                yaml_node_t *k = yaml_document_get_node(doc, pair->key);
                yaml_node_t *v = yaml_document_get_node(doc, pair->value);
                _cleanup_free_ char *key = NULL;
                int r;

                if (!k || !v)
                        return parser_fail(p, NULL, "broken YAML document");
                if (k->type != YAML_SCALAR_NODE)
                        return parser_fail(p, &k->start_mark, "expected a key, got %s", node_kind(k));
                const char *name = (const char *) k->data.scalar.value;

                if (asprintf(&key, "%s%s%s", prefix ?: "", prefix ? "." : "", name) < 0) {
                        key = NULL;
                        return -ENOMEM;
                }

                /* Dotted keys ("storage.dir: ...") are not a second syntax for nesting. */
                bool plain = *name && !strchr(name, '.') && strlen(name) == k->data.scalar.length;
                const ConfigItem *item = plain ? item_find(key) : NULL;
                if (plain && !prefix && strcmp(name, "routes") == 0)
                        r = parse_routes(p, doc, k, v);
                else if (item)
                        r = parser_set(p, item, v);
                else if (plain && item_has_prefix(key)) {
                        if (v->type == YAML_MAPPING_NODE)
                                r = parser_walk(p, doc, v, key);
                        else if (v->type == YAML_SCALAR_NODE && scalar_is_null(v))
                                r = 0; /* "storage:" with nothing under it */
                        else
                                r = parser_fail(p, &v->start_mark, "key '%s': expected a mapping, got %s", key,
                                                node_kind(v));
                } else
                        r = parser_warn(p, &k->start_mark, key);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parser_load(ConfigParser *p, FILE *f) {
        yaml_parser_t parser;
        yaml_document_t doc;
        int r = 0;

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_file(&parser, f);

        if (!yaml_parser_load(&parser, &doc)) {
                if (parser.error == YAML_MEMORY_ERROR)
                        r = -ENOMEM;
                else if (parser.error == YAML_READER_ERROR)
                        r = parser_fail(p, NULL, "invalid YAML: %s at byte %zu", parser.problem ?: "read error",
                                        parser.problem_offset);
                else
                        r = parser_fail(p, &parser.problem_mark, "invalid YAML: %s%s%s",
                                        parser.problem ?: "syntax error", parser.context ? " " : "",
                                        parser.context ?: "");
                yaml_parser_delete(&parser);
                return r;
        }

        yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (root && root->type == YAML_MAPPING_NODE)
                r = parser_walk(p, &doc, root, NULL);
        else if (root && !(root->type == YAML_SCALAR_NODE && scalar_is_null(root)))
                r = parser_fail(p, &root->start_mark, "expected a mapping at the top, got %s", node_kind(root));
        yaml_document_delete(&doc);

        /* One document per file: a second one would be silently ignored otherwise. */
        if (r >= 0 && root) {
                if (!yaml_parser_load(&parser, &doc))
                        r = parser_fail(p, &parser.problem_mark, "invalid YAML: %s",
                                        parser.problem ?: "syntax error");
                else {
                        yaml_node_t *next = yaml_document_get_root_node(&doc);
                        if (next)
                                r = parser_fail(p, &next->start_mark, "more than one YAML document");
                        yaml_document_delete(&doc);
                }
        }
        yaml_parser_delete(&parser);
        return r;
}

static const yaml_mark_t *parser_mark(ConfigParser *p, const char *key) {
        const ConfigItem *item = item_find(key);
        size_t idx = (size_t) (item - config_items);
        return p->set[idx] ? &p->marks[idx] : NULL;
}

static bool address_is_numeric(const char *s) {
        struct in6_addr a;

        return s && (inet_pton(AF_INET, s, &a) == 1 || inet_pton(AF_INET6, s, &a) == 1);
}

static int parser_validate(ConfigParser *p) {
        Config *c = p->config;

        for (size_t i = 0; i < N_ITEMS; i++) {
                if (!config_items[i].required)
                        continue;
                if (!*(char **) item_field(c, &config_items[i]))
                        return parser_fail(p, NULL, "missing required key '%s'", config_items[i].key);
        }

        /* Derived defaults. */
        if (!p->routes_set) {
                int r = route_specs_add(&c->routes, CONFIG_ROUTE_DEFAULT_NAME, CONFIG_ROUTE_DEFAULT,
                                        ROUTE_PRIORITY_DEFAULT, 0);
                if (r < 0)
                        return r;
        }
        if (!c->gateway_hostname && set_string(&c->gateway_hostname, c->hub_hostname) < 0)
                return -ENOMEM;
        if (!c->upstream_host && set_string(&c->upstream_host, c->hub_hostname) < 0)
                return -ENOMEM;
        if (!c->modules_dir && asprintf(&c->modules_dir, "%s-modules", c->storage_dir) < 0) {
                c->modules_dir = NULL;
                return -ENOMEM;
        }
        if (!c->agent_gateway_hostname && set_string(&c->agent_gateway_hostname, c->gateway_hostname) < 0)
                return -ENOMEM;

        if (c->tls_port != 0 && !c->tls_cert_file)
                return parser_fail(p, NULL, "missing required key 'listeners.tls.cert_file' (listeners.tls.port is not 0)");
        if (c->tls_port != 0 && !c->tls_key_file)
                return parser_fail(p, NULL, "missing required key 'listeners.tls.key_file' (listeners.tls.port is not 0)");
        /* Devices present certificates only on the TLS listener. */
        if (c->tls_port == 0 && c->tls_client_ca_file)
                return parser_fail(p, parser_mark(p, "listeners.tls.client_ca_file"),
                                   "key 'listeners.tls.client_ca_file': needs the TLS listener (listeners.tls.port is 0)");
        if (c->tls_port != 0 && c->tls_port == c->plain_port)
                return parser_fail(p, parser_mark(p, "listeners.plain.port"),
                                   "key 'listeners.plain.port': same port as listeners.tls.port (%u)", c->plain_port);
        if (c->metrics_port != 0 && !address_is_numeric(c->metrics_address))
                return parser_fail(p, parser_mark(p, "metrics.address"),
                                   "key 'metrics.address': not a numeric IPv4 or IPv6 address");
        /* The method HTTPS listener uses the device listener's certificate. */
        if (!parser_mark(p, "methods.port"))
                c->methods_port = c->tls_cert_file && c->tls_key_file ? 443 : 0;
        else if (c->methods_port != 0 && (!c->tls_cert_file || !c->tls_key_file))
                return parser_fail(p, parser_mark(p, "methods.port"),
                                   "key 'methods.port': the methods HTTPS listener needs listeners.tls.cert_file and "
                                   "listeners.tls.key_file (or methods.port: 0)");
        if (c->max_bytes < MIB)
                return parser_fail(p, parser_mark(p, "storage.max_bytes"),
                                   "key 'storage.max_bytes': must be at least 1MiB (is %" PRIu64 ")", c->max_bytes);
        /* One patch may be 64 KiB (TWIN_PATCH_BYTES_MAX): a smaller cap could refuse a lone valid patch. */
        if (c->twin_queue_max_bytes < 64 * 1024 || c->twin_queue_max_bytes > c->max_bytes)
                return parser_fail(p, parser_mark(p, "storage.twin_queue_max_bytes"),
                                   "key 'storage.twin_queue_max_bytes': must be between 64KiB and storage.max_bytes");
        if (c->ttl_sec < 1)
                return parser_fail(p, parser_mark(p, "store_and_forward.time_to_live"),
                                   "key 'store_and_forward.time_to_live': must be at least 1s");
        if (c->sync_interval_msec < 1)
                return parser_fail(p, parser_mark(p, "storage.sync_interval"),
                                   "key 'storage.sync_interval': must be at least 1ms");
        if (c->token_ttl_sec < 1)
                return parser_fail(p, parser_mark(p, "upstream.token_ttl"),
                                   "key 'upstream.token_ttl': must be at least 1s");
        if (c->scope_refresh_sec < 1)
                return parser_fail(p, parser_mark(p, "upstream.scope_refresh"),
                                   "key 'upstream.scope_refresh': must be at least 1s");
        /* A token valid for 0 s admits nobody; one past ~100 years is no limit at all. */
        if (c->max_token_lifetime_sec < 60 || c->max_token_lifetime_sec > 36500ull * 86400)
                return parser_fail(p, parser_mark(p, "listeners.max_token_lifetime"),
                                   "key 'listeners.max_token_lifetime': must be between 1min and 36500d");
        return 0;
}

static int config_new_defaults(const char *name, Config **ret) {
        _cleanup_(config_freep) Config *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->source = strdup(name);
        if (!c->source)
                return -ENOMEM;
        for (size_t i = 0; i < N_ITEMS; i++) {
                if (!config_items[i].def)
                        continue;
                int r = config_items[i].type->parse(config_items[i].def, item_field(c, &config_items[i]));
                if (r == -ENOMEM)
                        return r;
                assert(r >= 0); /* a bad default is a programming error */
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int config_parse(FILE *f, const char *name, Config **ret, char **ret_error, char **ret_warnings) {
        _cleanup_(config_freep) Config *c = NULL;
        int r;

        if (!f || !ret)
                return -EINVAL;
        if (!name)
                name = "(config)";

        r = config_new_defaults(name, &c);
        if (r < 0)
                return r;

        ConfigParser p = { .name = name, .config = c };
        r = parser_load(&p, f);
        if (r >= 0)
                r = parser_validate(&p);

        if (ret_warnings)
                *ret_warnings = TAKE_PTR(p.warnings);
        free(p.warnings);
        r = error_hand_over(r, &p.error, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

int config_load(const char *path, Config **ret, char **ret_error, char **ret_warnings) {
        if (!path || !ret)
                return -EINVAL;

        FILE *f = fopen(path, "re");
        if (!f) {
                int r = -errno;
                if (ret_error && asprintf(ret_error, "%s: cannot open: %s", path, strerror(-r)) < 0)
                        *ret_error = NULL;
                if (ret_warnings)
                        *ret_warnings = NULL;
                return r;
        }
        int r = config_parse(f, path, ret, ret_error, ret_warnings);
        (void) fclose(f);
        return r;
}

int config_edge_identity(const Config *c, const char *module, char **ret) {
        char *s;

        if (asprintf(&s, "%s/%s", c->edge_device_id, module) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int config_socket_path(const Config *c, const char *name, char **ret) {
        if (!c || !c->runtime_dir || !name || !*name || strchr(name, '/') || !ret)
                return -EINVAL;
        if (asprintf(ret, "%s/%s.sock", c->runtime_dir, name) < 0)
                return -ENOMEM;
        return 0;
}
