/* edgehub's mosquitto plugin: entry points, registration, the context */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "broker-plugin/acl.h"
#include "broker-plugin/auth.h"
#include "broker-plugin/broker-api.h"
#include "broker-plugin/disconnect.h"
#include "broker-plugin/message.h"
#include "broker-plugin/plugin.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

/*
 * Options (mosquitto.conf, after "plugin /path/edgehub-plugin.so"):
 *   plugin_opt_config /etc/edgehub/edgehub.yaml   required: the shared config
 *   plugin_opt_auth_timeout_ms 1000                deadline of a CONNECT check
 * Everything else is static or hidden (meson gnu_symbol_visibility), so
 * proto's helpers cannot clash with the broker's symbols.
 */
#define _public_ __attribute__((visibility("default")))

#define RATELIMIT_INTERVAL_USEC (10u * 1000u * 1000u)
#define RATELIMIT_BURST 10u

static const struct {
        int event;
        MOSQ_FUNC_generic_callback callback;
} plugin_callbacks[] = {
        { MOSQ_EVT_BASIC_AUTH, auth_basic_callback },
        { MOSQ_EVT_ACL_CHECK, acl_check_callback },
        { MOSQ_EVT_MESSAGE, message_callback },
        { MOSQ_EVT_DISCONNECT, disconnect_callback },
        { MOSQ_EVT_TICK, watchdog_tick_callback },
        { MOSQ_EVT_TICK, token_expiry_tick_callback },
};

/* ---- options ---- */

typedef struct PluginOptions {
        const char *config;
        uint64_t auth_timeout_msec;
} PluginOptions;

static int option_parse_string(const char *value, void *dest) {
        if (!value || !*value)
                return -EINVAL;
        *(const char **) dest = value;
        return 0;
}

static int option_parse_msec(const char *value, void *dest) {
        char *end;

        if (!value || *value < '0' || *value > '9')
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno != 0 || *end != '\0' || v == 0 || v > PLUGIN_TIMEOUT_MSEC_MAX)
                return -ERANGE;
        *(uint64_t *) dest = v;
        return 0;
}

static const struct {
        const char *key;
        int (*parse)(const char *value, void *dest);
        size_t offset;
} option_table[] = {
        { "config", option_parse_string, offsetof(PluginOptions, config) },
        { "auth_timeout_ms", option_parse_msec, offsetof(PluginOptions, auth_timeout_msec) },
};

static int plugin_parse_options(const struct mosquitto_opt *options, int option_count, PluginOptions *o) {
        for (int i = 0; i < option_count; i++) {
                const char *key = options[i].key;
                size_t j;

                for (j = 0; j < ELEMENTSOF(option_table); j++)
                        if (key && strcmp(key, option_table[j].key) == 0)
                                break;
                if (j == ELEMENTSOF(option_table)) {
                        log_warning("Unknown option 'plugin_opt_%s', ignoring", strna(key));
                        continue;
                }
                int r = option_table[j].parse(options[i].value, (uint8_t *) o + option_table[j].offset);
                if (r < 0)
                        return log_error_errno(r, "Invalid value '%s' of plugin_opt_%s: %m", strna(options[i].value),
                                               key);
        }
        if (!o->config)
                return log_error_errno(-EINVAL, "plugin_opt_config is required: the path of edgehub's config file");
        return 0;
}

/* ---- the context ---- */

static void plugin_log_warnings(char *warnings) {
        char *save = NULL;
        for (char *line = strtok_r(warnings, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                log_warning("%s", line);
}

int plugin_new(Plugin **ret, mosquitto_plugin_id_t *identifier, const struct mosquitto_opt *options,
               int option_count) {
        _cleanup_(plugin_freep) Plugin *p = NULL;
        _cleanup_free_ char *error = NULL, *warnings = NULL, *auth_cache = NULL;
        PluginOptions o = {
                .auth_timeout_msec = PLUGIN_AUTH_TIMEOUT_MSEC_DEFAULT,
        };
        int r;

        r = plugin_parse_options(options, option_count, &o);
        if (r < 0)
                return r;

        p = malloc(sizeof(*p));
        if (!p)
                return log_error_errno(-ENOMEM, "Failed to allocate the plugin context: %m");
        *p = (Plugin){
                .identifier = identifier,
                .backend = BACKEND_NULL,
                .presence = PRESENCE_NULL,
                .expiry = TOKEN_EXPIRY_NULL,
                .auth_ratelimit = RATELIMIT_INIT(RATELIMIT_INTERVAL_USEC, RATELIMIT_BURST),
                .store_ratelimit = RATELIMIT_INIT(RATELIMIT_INTERVAL_USEC, RATELIMIT_BURST),
                .message_ratelimit = RATELIMIT_INIT(RATELIMIT_INTERVAL_USEC, RATELIMIT_BURST),
        };

        r = config_load(o.config, &p->config, &error, &warnings);
        if (r < 0) {
                if (error)
                        log_error("%s", error);
                return log_error_errno(r, "Failed to load '%s': %m", o.config);
        }
        if (warnings)
                plugin_log_warnings(warnings);
        log_set_max_level(p->config->log_level);

        r = config_socket_path(p->config, SOCKET_BROKER, &p->broker_socket);
        if (r >= 0)
                r = config_socket_path(p->config, SOCKET_AUTH_CACHE, &auth_cache);
        if (r < 0)
                return log_error_errno(r, "Failed to build socket paths under '%s': %m", p->config->runtime_dir);

        r = backend_init(&p->backend, auth_cache, o.auth_timeout_msec * 1000u);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the client of auth-cache: %m");

        r = ingest_append_init(&p->ingest, p->config->storage_dir, p->config->runtime_dir,
                               p->config->overflow == OVERFLOW_REJECT_NEW, p->config->sync == SYNC_ALWAYS);
        if (r < 0)
                return log_error_errno(r, "Failed to open the ingest log under '%s/" INGEST_DIR "': %m",
                                       p->config->storage_dir);
        log_info("edgehub plugin: telemetry goes to the ingest log in '%s/" INGEST_DIR "'", p->config->storage_dir);

        log_info("edgehub plugin: internal listener %s, auth-cache %s (%" PRIu64 " ms)", p->broker_socket, auth_cache,
                 o.auth_timeout_msec);
        watchdog_init(&p->watchdog);
        *ret = TAKE_PTR(p);
        return 0;
}

static void plugin_unregister(Plugin *p) {
        if (!p->registered)
                return;
        for (size_t i = 0; i < ELEMENTSOF(plugin_callbacks); i++)
                (void) mosquitto_callback_unregister(p->identifier, plugin_callbacks[i].event,
                                                     plugin_callbacks[i].callback, NULL);
        p->registered = false;
}

/* All or nothing: a half-registered plugin could leave auth on and ACLs off. */
static int plugin_register(Plugin *p) {
        for (size_t i = 0; i < ELEMENTSOF(plugin_callbacks); i++) {
                int r = mosquitto_callback_register(p->identifier, plugin_callbacks[i].event,
                                                    plugin_callbacks[i].callback, NULL, p);
                if (r != MOSQ_ERR_SUCCESS) {
                        log_error("Failed to register callback for event %d: %s", plugin_callbacks[i].event,
                                  mosquitto_strerror(r));
                        while (i-- > 0)
                                (void) mosquitto_callback_unregister(p->identifier, plugin_callbacks[i].event,
                                                                     plugin_callbacks[i].callback, NULL);
                        return r;
                }
        }
        p->registered = true;
        return MOSQ_ERR_SUCCESS;
}

Plugin *plugin_free(Plugin *p) {
        if (!p)
                return NULL;
        plugin_unregister(p);
        presence_deinit(&p->presence);
        token_expiry_deinit(&p->expiry);
        ingest_append_deinit(&p->ingest);
        backend_deinit(&p->backend);
        free(p->broker_socket);
        config_free(p->config);
        free(p);
        return NULL;
}

/* ---- entry points ---- */

static void plugin_log(int level, const char *message, void *userdata) {
        int mosq_level;

        if (level <= LOG_ERR)
                mosq_level = MOSQ_LOG_ERR;
        else if (level == LOG_WARNING)
                mosq_level = MOSQ_LOG_WARNING;
        else if (level == LOG_NOTICE)
                mosq_level = MOSQ_LOG_NOTICE;
        else if (level == LOG_INFO)
                mosq_level = MOSQ_LOG_INFO;
        else
                mosq_level = MOSQ_LOG_DEBUG;
        mosquitto_log_printf(mosq_level, "edgehub: %s", message);
}

_public_ int mosquitto_plugin_version(int supported_version_count, const int *supported_versions) {
        for (int i = 0; i < supported_version_count; i++)
                if (supported_versions[i] == MOSQ_PLUGIN_VERSION)
                        return MOSQ_PLUGIN_VERSION;
        return -1;
}

_public_ int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                                   struct mosquitto_opt *options, int option_count) {
        _cleanup_(plugin_freep) Plugin *p = NULL;
        int r;

        log_set_sink(plugin_log, NULL);

        /* Any failure fails the broker's start: it must never run without our auth and ACLs. */
        r = plugin_new(&p, identifier, options, option_count);
        if (r < 0)
                return MOSQ_ERR_INVAL;
        r = plugin_register(p);
        if (r != MOSQ_ERR_SUCCESS)
                return r;

        *userdata = TAKE_PTR(p);
        return MOSQ_ERR_SUCCESS;
}

_public_ int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count) {
        plugin_free(userdata);
        log_set_sink(NULL, NULL);
        return MOSQ_ERR_SUCCESS;
}
