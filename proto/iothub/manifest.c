/* The deployment manifest: the $edgeAgent module twin's desired properties */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "proto/iothub/manifest.h"
#include "proto/util/cleanup.h"
#include "proto/util/shown.h"


static const char *const module_status_names[_MODULE_STATUS_MAX] = {
        [MODULE_STATUS_RUNNING] = "running",
        [MODULE_STATUS_STOPPED] = "stopped",
};

static const char *const restart_policy_names[_RESTART_POLICY_MAX] = {
        [RESTART_NEVER] = "never",
        [RESTART_ON_FAILURE] = "on-failure",
        [RESTART_ON_UNHEALTHY] = "on-unhealthy",
        [RESTART_ALWAYS] = "always",
};

const char *module_status_to_string(ModuleStatus s) {
        return s >= 0 && s < _MODULE_STATUS_MAX ? module_status_names[s] : NULL;
}

ModuleStatus module_status_from_string(const char *s) {
        for (int i = 0; s && i < _MODULE_STATUS_MAX; i++)
                if (strcmp(module_status_names[i], s) == 0)
                        return (ModuleStatus) i;
        return _MODULE_STATUS_INVALID;
}

const char *restart_policy_to_string(RestartPolicy p) {
        return p >= 0 && p < _RESTART_POLICY_MAX ? restart_policy_names[p] : NULL;
}

RestartPolicy restart_policy_from_string(const char *s) {
        for (int i = 0; s && i < _RESTART_POLICY_MAX; i++)
                if (strcmp(restart_policy_names[i], s) == 0)
                        return (RestartPolicy) i;
        return _RESTART_POLICY_INVALID;
}

/* The schema versions of edgeAgent's desired properties we understand; a new one is a row. */
typedef struct Schema {
        const char *version;
        bool startup_order; /* modules may say startupOrder */
} Schema;

static const Schema schemas[] = {
        { "1.0", false },
        { "1.1", true },
};

/* obj[key] in *ret, NULL when absent and not required. */
static int get_member(const json_t *obj, const char *path, const char *key, bool required, json_t **ret,
                      char **ret_error) {
        *ret = json_object_get(obj, key);
        if (!*ret && required)
                return fail_bad_message(ret_error, "%s: missing required key '%s'", path, key);
        return 0;
}

/* obj[key] as an object; *ret NULL when absent and not required. */
static int get_object(const json_t *obj, const char *path, const char *key, bool required, json_t **ret,
                      char **ret_error) {
        json_t *v;
        int r = get_member(obj, path, key, required, &v, ret_error);
        if (r < 0)
                return r;
        if (v && !json_is_object(v))
                return fail_bad_message(ret_error, "%s.%s: expected an object, got %s", path, key, json_type_name(v));
        *ret = v;
        return 0;
}

static int get_string(const json_t *obj, const char *path, const char *key, bool required, const char **ret,
                      char **ret_error) {
        json_t *v;
        int r = get_member(obj, path, key, required, &v, ret_error);
        if (r < 0)
                return r;
        if (!v) {
                *ret = NULL;
                return 0;
        }
        if (!json_is_string(v))
                return fail_bad_message(ret_error, "%s.%s: expected a string, got %s", path, key, json_type_name(v));
        /* A NUL inside would cut the value short in argv/environ: refuse rather than run something else. */
        if (strlen(json_string_value(v)) != json_string_length(v))
                return fail_bad_message(ret_error, "%s.%s: contains a NUL character", path, key);
        *ret = json_string_value(v);
        return 0;
}

static void env_deinit(ManifestEnv *env, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(env[i].name);
                free(env[i].value);
        }
        free(env);
}

static void module_deinit(ManifestModule *mm) {
        free(mm->name);
        free(mm->version);
        free(mm->path);
        for (size_t i = 0; i < mm->n_args; i++)
                free(mm->args[i]);
        free(mm->args);
        env_deinit(mm->env, mm->n_env);
}

Manifest *manifest_free(Manifest *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_modules; i++)
                module_deinit(&m->modules[i]);
        free(m->modules);
        free(m->schema_version);
        free(m->upstream_protocol);
        free(m->storage_folder);
        free(m);
        return NULL;
}

static bool env_name_is_valid(const char *s) {
        if (!*s || strlen(s) > 255 || (*s >= '0' && *s <= '9'))
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
                        return false;
        return true;
}

/* Module names become client ids, topic levels, twin keys (no '.') and file names: a conservative set. */
static bool module_name_is_valid(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > MANIFEST_NAME_MAX || s[0] == '-')
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
                      *s == '-'))
                        return false;
        return true;
}

/* env: {"NAME": {"value": "..."}}, as IoT Edge writes it. */
static int parse_env(const json_t *obj, const char *path, ManifestEnv **ret, size_t *ret_n, char **ret_error) {
        json_t *env = NULL, *v;
        const char *name;
        size_t n = 0;
        int r;

        *ret = NULL;
        *ret_n = 0;
        r = get_object(obj, path, "env", false, &env, ret_error);
        if (r < 0 || !env)
                return r;
        if (json_object_size(env) > MANIFEST_ENV_MAX)
                return fail_bad_message(ret_error, "%s.env: more than %u variables", path, MANIFEST_ENV_MAX);
        ManifestEnv *list = calloc(json_object_size(env) + 1, sizeof(*list));
        if (!list)
                return -ENOMEM;
        json_object_foreach(env, name, v) {
                char s[SHOWN_MAX + 4];
                const char *value;

                shown(name, s);
                if (!env_name_is_valid(name)) {
                        env_deinit(list, n);
                        return fail_bad_message(ret_error, "%s.env: invalid variable name '%s'", path, s);
                }
                if (!json_is_object(v)) {
                        env_deinit(list, n);
                        return fail_bad_message(ret_error, "%s.env.%s: expected {\"value\": ...}, got %s", path, s,
                                    json_type_name(v));
                }
                _cleanup_free_ char *vpath = NULL;
                if (asprintf(&vpath, "%s.env.%s", path, s) < 0) {
                        env_deinit(list, n);
                        return -ENOMEM;
                }
                r = get_string(v, vpath, "value", true, &value, ret_error);
                if (r < 0) {
                        env_deinit(list, n);
                        return r;
                }
                list[n].name = strdup(name);
                list[n].value = strdup(value);
                n++;
                if (!list[n - 1].name || !list[n - 1].value) {
                        env_deinit(list, n);
                        return -ENOMEM;
                }
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

static const char *env_find(const ManifestEnv *env, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(env[i].name, name) == 0)
                        return env[i].value;
        return NULL;
}

static int parse_status_and_policy(const json_t *obj, const char *path, ModuleStatus *ret_status,
                                   RestartPolicy *ret_policy, char **ret_error) {
        const char *status, *policy;
        char s[SHOWN_MAX + 4];
        int r;

        r = get_string(obj, path, "status", true, &status, ret_error);
        if (r < 0)
                return r;
        r = get_string(obj, path, "restartPolicy", true, &policy, ret_error);
        if (r < 0)
                return r;
        *ret_status = module_status_from_string(status);
        if (*ret_status < 0) {
                shown(status, s);
                return fail_bad_message(ret_error, "%s.status: '%s' is not running or stopped", path, s);
        }
        *ret_policy = restart_policy_from_string(policy);
        if (*ret_policy < 0) {
                shown(policy, s);
                return fail_bad_message(ret_error, "%s.restartPolicy: '%s' is not never, on-failure, on-unhealthy or always", path,
                            s);
        }
        return 0;
}

static int parse_process_settings(const json_t *obj, const char *path, ManifestModule *mm, char **ret_error) {
        json_t *settings, *args, *a;
        const char *exe, *key;
        json_t *v;
        size_t i;
        int r;

        r = get_object(obj, path, "settings", true, &settings, ret_error);
        if (r < 0)
                return r;
        _cleanup_free_ char *spath = NULL;
        if (asprintf(&spath, "%s.settings", path) < 0)
                return -ENOMEM;
        json_object_foreach(settings, key, v)
                if (strcmp(key, "path") != 0 && strcmp(key, "args") != 0 && strcmp(key, "connectionString") != 0) {
                        char s[SHOWN_MAX + 4];
                        shown(key, s);
                        return fail_bad_message(ret_error, "%s: unknown key '%s' (a process module has path, args and "
                                                "connectionString)", spath, s);
                }
        v = json_object_get(settings, "connectionString");
        if (v && !json_is_boolean(v))
                return fail_bad_message(ret_error, "%s.connectionString: expected true or false, got %s", spath,
                                        json_type_name(v));
        mm->connection_string = v && json_is_true(v);
        r = get_string(settings, spath, "path", true, &exe, ret_error);
        if (r < 0)
                return r;
        if (exe[0] != '/')
                return fail_bad_message(ret_error, "%s.path: must be an absolute path", spath);
        if (strlen(exe) > 4095)
                return fail_bad_message(ret_error, "%s.path: longer than 4095 bytes", spath);
        mm->path = strdup(exe);
        if (!mm->path)
                return -ENOMEM;

        args = json_object_get(settings, "args");
        if (!args)
                return 0;
        if (!json_is_array(args))
                return fail_bad_message(ret_error, "%s.args: expected an array of strings, got %s", spath, json_type_name(args));
        if (json_array_size(args) > MANIFEST_ARGS_MAX)
                return fail_bad_message(ret_error, "%s.args: more than %u arguments", spath, MANIFEST_ARGS_MAX);
        mm->args = calloc(json_array_size(args) + 1, sizeof(char *));
        if (!mm->args)
                return -ENOMEM;
        json_array_foreach(args, i, a) {
                if (!json_is_string(a))
                        return fail_bad_message(ret_error, "%s.args[%zu]: expected a string, got %s", spath, i, json_type_name(a));
                if (strlen(json_string_value(a)) != json_string_length(a))
                        return fail_bad_message(ret_error, "%s.args[%zu]: contains a NUL character", spath, i);
                mm->args[i] = strdup(json_string_value(a));
                if (!mm->args[i])
                        return -ENOMEM;
                mm->n_args = i + 1;
        }
        return 0;
}

static int parse_module(const Schema *schema, const char *name, const json_t *obj, ManifestModule *mm,
                        char **ret_error) {
        _cleanup_free_ char *path = NULL;
        const char *type, *version;
        char s[SHOWN_MAX + 4];
        json_t *order;
        int r;

        shown(name, s);
        if (!module_name_is_valid(name))
                return fail_bad_message(ret_error, "modules: invalid module name '%s' (1..%u of A-Z a-z 0-9 _ -, not starting "
                            "with -)", s, MANIFEST_NAME_MAX);
        if (asprintf(&path, "modules.%s", s) < 0)
                return -ENOMEM;
        if (!json_is_object(obj))
                return fail_bad_message(ret_error, "%s: expected an object, got %s", path, json_type_name(obj));
        mm->name = strdup(name);
        if (!mm->name)
                return -ENOMEM;

        r = get_string(obj, path, "type", true, &type, ret_error);
        if (r < 0)
                return r;
        if (strcmp(type, "docker") == 0)
                return fail_bad_message(ret_error, "module '%s' is of type docker: this runtime has no container engine "
                            "(use type process with settings.path)", s);
        if (strcmp(type, "process") != 0) {
                char t[SHOWN_MAX + 4];
                shown(type, t);
                return fail_bad_message(ret_error, "module '%s': unknown type '%s' (this runtime runs type process)", s, t);
        }
        r = parse_status_and_policy(obj, path, &mm->status, &mm->restart_policy, ret_error);
        if (r < 0)
                return r;
        r = get_string(obj, path, "version", false, &version, ret_error);
        if (r < 0)
                return r;
        if (version && !(mm->version = strdup(version)))
                return -ENOMEM;

        mm->startup_order = UINT32_MAX;
        order = json_object_get(obj, "startupOrder");
        if (order) {
                if (!schema->startup_order)
                        return fail_bad_message(ret_error, "%s.startupOrder: not in schemaVersion %s (use 1.1)", path,
                                    schema->version);
                if (!json_is_integer(order) || json_integer_value(order) < 0 ||
                    json_integer_value(order) > UINT32_MAX)
                        return fail_bad_message(ret_error, "%s.startupOrder: expected an integer 0..%u", path, UINT32_MAX);
                mm->startup_order = (unsigned) json_integer_value(order);
        }
        r = parse_process_settings(obj, path, mm, ret_error);
        if (r < 0)
                return r;
        return parse_env(obj, path, &mm->env, &mm->n_env, ret_error);
}

/* edgeAgent and edgeHub describe this hub itself: their type and settings are not ours to run. */
static int parse_system_modules(const json_t *root, Manifest *m, char **ret_error) {
        json_t *system, *agent, *hub, *v;
        const char *type, *key;
        ModuleStatus status;
        RestartPolicy policy;
        ManifestEnv *env = NULL;
        size_t n_env = 0;
        int r;

        r = get_object(root, "manifest", "systemModules", true, &system, ret_error);
        if (r < 0)
                return r;
        json_object_foreach(system, key, v)
                if (strcmp(key, "edgeAgent") != 0 && strcmp(key, "edgeHub") != 0) {
                        char s[SHOWN_MAX + 4];
                        shown(key, s);
                        return fail_bad_message(ret_error, "systemModules: unknown module '%s' (edgeAgent, edgeHub)", s);
                }
        r = get_object(system, "systemModules", "edgeAgent", true, &agent, ret_error);
        if (r < 0)
                return r;
        r = get_string(agent, "systemModules.edgeAgent", "type", true, &type, ret_error);
        if (r < 0)
                return r;
        r = parse_env(agent, "systemModules.edgeAgent", &env, &n_env, ret_error);
        env_deinit(env, n_env);
        if (r < 0)
                return r;

        r = get_object(system, "systemModules", "edgeHub", true, &hub, ret_error);
        if (r < 0)
                return r;
        r = get_string(hub, "systemModules.edgeHub", "type", true, &type, ret_error);
        if (r < 0)
                return r;
        r = parse_status_and_policy(hub, "systemModules.edgeHub", &status, &policy, ret_error);
        if (r < 0)
                return r;
        if (status != MODULE_STATUS_RUNNING)
                return fail_bad_message(ret_error, "systemModules.edgeHub.status: the hub cannot be stopped by its own "
                            "deployment (must be running)");
        r = parse_env(hub, "systemModules.edgeHub", &env, &n_env, ret_error);
        if (r < 0)
                return r;

        const char *protocol = env_find(env, n_env, "UpstreamProtocol");
        const char *folder = env_find(env, n_env, "storageFolder");
        if (protocol && strcasecmp(protocol, "Mqtt") != 0) {
                char s[SHOWN_MAX + 4];
                shown(protocol, s);
                env_deinit(env, n_env);
                return fail_bad_message(ret_error, "systemModules.edgeHub.env.UpstreamProtocol: '%s' is not supported; this hub "
                            "talks to IoT Hub over MQTT only (Mqtt)", s);
        }
        if ((protocol && !(m->upstream_protocol = strdup(protocol))) ||
            (folder && !(m->storage_folder = strdup(folder)))) {
                env_deinit(env, n_env);
                return -ENOMEM;
        }
        env_deinit(env, n_env);
        return 0;
}

static int compare_order(const void *a, const void *b) {
        const ManifestModule *x = a, *y = b;
        if (x->startup_order != y->startup_order)
                return x->startup_order < y->startup_order ? -1 : 1;
        /* qsort is not stable: the name keeps the order the same for the same manifest. */
        return strcmp(x->name, y->name);
}

int manifest_parse(const void *buf, size_t len, Manifest **ret, char **ret_error) {
        _cleanup_(manifest_freep) Manifest *m = NULL;
        json_auto_t *root = NULL;
        json_t *runtime, *modules = NULL, *v, *version;
        const char *schema_version, *runtime_type, *name;
        const Schema *schema = NULL;
        json_error_t e;
        int r;

        if ((!buf && len > 0) || !ret)
                return -EINVAL;
        if (ret_error)
                *ret_error = NULL;
        if (len > MANIFEST_MAX)
                return fail_bad_message(ret_error, "manifest larger than %u bytes", MANIFEST_MAX);

        /* Duplicate keys are refused here, so two modules of one name never reach the checks below. */
        root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &e);
        if (!root)
                return fail_bad_message(ret_error, "not valid JSON: line %d column %d: %s", e.line, e.column, e.text);
        if (!json_is_object(root))
                return fail_bad_message(ret_error, "manifest: expected an object, got %s", json_type_name(root));

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->version = -1;

        r = get_string(root, "manifest", "schemaVersion", true, &schema_version, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ELEMENTSOF(schemas) && !schema; i++)
                if (strcmp(schemas[i].version, schema_version) == 0)
                        schema = &schemas[i];
        if (!schema) {
                char s[SHOWN_MAX + 4];
                shown(schema_version, s);
                return fail_bad_message(ret_error, "unsupported schemaVersion '%s' (1.0 or 1.1)", s);
        }
        m->schema_version = strdup(schema->version);
        if (!m->schema_version)
                return -ENOMEM;

        version = json_object_get(root, "$version");
        if (version) {
                if (!json_is_integer(version) || json_integer_value(version) < 0)
                        return fail_bad_message(ret_error, "$version: expected a non-negative integer");
                m->version = json_integer_value(version);
        }

        r = get_object(root, "manifest", "runtime", true, &runtime, ret_error);
        if (r < 0)
                return r;
        r = get_string(runtime, "runtime", "type", true, &runtime_type, ret_error);
        if (r < 0)
                return r;
        /* A manifest written for IoT Edge says docker here; its runtime settings have nothing for us. */
        if (strcmp(runtime_type, "process") != 0 && strcmp(runtime_type, "docker") != 0) {
                char s[SHOWN_MAX + 4];
                shown(runtime_type, s);
                return fail_bad_message(ret_error, "runtime.type: unknown runtime '%s' (process)", s);
        }

        r = parse_system_modules(root, m, ret_error);
        if (r < 0)
                return r;

        r = get_object(root, "manifest", "modules", false, &modules, ret_error);
        if (r < 0)
                return r;
        if (modules) {
                if (json_object_size(modules) > MANIFEST_MODULES_MAX)
                        return fail_bad_message(ret_error, "modules: more than %u modules", MANIFEST_MODULES_MAX);
                m->modules = calloc(json_object_size(modules) + 1, sizeof(*m->modules));
                if (!m->modules)
                        return -ENOMEM;
                json_object_foreach(modules, name, v) {
                        if (strcmp(name, "edgeAgent") == 0 || strcmp(name, "edgeHub") == 0)
                                return fail_bad_message(ret_error, "modules.%s: duplicate module name (a system module)", name);
                        ManifestModule *mm = &m->modules[m->n_modules++];
                        r = parse_module(schema, name, v, mm, ret_error);
                        if (r < 0)
                                return r;
                }
                qsort(m->modules, m->n_modules, sizeof(*m->modules), compare_order);
        }

        *ret = TAKE_PTR(m);
        return 0;
}

const ManifestModule *manifest_find(const Manifest *m, const char *name) {
        for (size_t i = 0; m && i < m->n_modules; i++)
                if (strcmp(m->modules[i].name, name) == 0)
                        return &m->modules[i];
        return NULL;
}

static bool str_eq(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

bool manifest_module_same_process(const ManifestModule *a, const ManifestModule *b) {
        if (!str_eq(a->path, b->path) || !str_eq(a->version, b->version) || a->n_args != b->n_args ||
            a->n_env != b->n_env || a->connection_string != b->connection_string)
                return false;
        for (size_t i = 0; i < a->n_args; i++)
                if (strcmp(a->args[i], b->args[i]) != 0)
                        return false;
        for (size_t i = 0; i < a->n_env; i++)
                if (!str_eq(env_find(b->env, b->n_env, a->env[i].name), a->env[i].value))
                        return false;
        return true;
}

int manifest_check_executables(const Manifest *m, char **ret_error) {
        for (size_t i = 0; i < m->n_modules; i++) {
                const ManifestModule *mm = &m->modules[i];
                struct stat st;
                int r = 0;

                if (stat(mm->path, &st) < 0)
                        r = -errno;
                else if (!S_ISREG(st.st_mode))
                        r = -EISDIR;
                else if (access(mm->path, X_OK) < 0)
                        r = -errno;
                if (r < 0) {
                        char s[SHOWN_MAX + 4];
                        shown(mm->path, s);
                        (void) fail_bad_message(ret_error, "module '%s': executable '%s': %s", mm->name, s,
                                    r == -EISDIR ? "not a regular file" : strerror(-r));
                        return r;
                }
        }
        return 0;
}
