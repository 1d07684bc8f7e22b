/* Tests of the agent's core: deployments applied, refused and saved; modules waiting for the bus; the control table */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "agent/manager.h"
#include "proto/ipc/auth-client.h"
#include "proto/ipc/client.h"
#include "proto/ipc/peer.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/runtime/state-file.h"
#include "proto/runtime/test-daemon.h"
#include "proto/util/cleanup.h"

#define SYSTEM_MODULES                                                                                         \
        "\"runtime\": {\"type\": \"process\", \"settings\": {}},"                                              \
        "\"systemModules\": {\"edgeAgent\": {\"type\": \"process\", \"settings\": {}},"                       \
        "  \"edgeHub\": {\"type\": \"process\", \"status\": \"running\", \"restartPolicy\": \"always\","      \
        "    \"settings\": {}, \"env\": {\"UpstreamProtocol\": {\"value\": \"Mqtt\"}%s}}}"

/* A process module: status and restartPolicy as given, "settings" as JSON text. */
#define MODULE(name, status, policy, settings)                                                                 \
        "\"" name "\": {\"type\": \"process\", \"status\": \"" status "\", \"restartPolicy\": \"" policy "\"," \
        " \"version\": \"1.0\", \"settings\": " settings "}"

/* A manifest of schema 1.1 with these modules (JSON members, may be ""), its own "$version" unless < 0. */
static char *manifest(int64_t version, const char *modules) {
        _cleanup_free_ char *system = NULL;
        char *text = NULL;

        assert_true(asprintf(&system, SYSTEM_MODULES, "") > 0);
        if (version >= 0)
                assert_true(asprintf(&text, "{\"schemaVersion\": \"1.1\", %s, \"modules\": {%s}, \"$version\": %lld}",
                                     system, modules, (long long) version) > 0);
        else
                assert_true(asprintf(&text, "{\"schemaVersion\": \"1.1\", %s, \"modules\": {%s}}", system, modules) > 0);
        return text;
}

static char *path_in(const char *dir, const char *name) {
        char *p = NULL;

        assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
        return p;
}

/*
 * A Manager on a scratch folder with its state opened, as main() leaves it
 * before the bus: auth-cache and hub-store are expected at {dir}/run, where
 * nothing listens unless a test forks a stand-in there. Modules run as our
 * own user, as in a development setup: the tests may run as root.
 */
static Manager *make_manager(const char *dir) {
        _cleanup_free_ char *run = path_in(dir, "run"), *auth = path_in(dir, "run/auth-cache.sock"),
                            *store = path_in(dir, "run/hub-store.sock");
        Config *config = test_config_new(dir);
        Manager *m = NULL;

        assert_true(mkdir(run, 0755) == 0 || errno == EEXIST);
        assert_int_equal(manager_new(&m, &config), 0);
        m->module_users = false;
        assert_int_equal(frame_client_init(&m->auth_cache, auth), 0);
        assert_int_equal(frame_client_init(&m->hub_store, store), 0);
        assert_int_equal(manager_open_state(m), 0);
        return m;
}

/* A scratch folder, and the Manager on it the teardown frees (a failed assertion leaves it behind). */
typedef struct Fixture {
        char *dir;
        Manager *m;
        pid_t stand_in;   /* a daemon forked by the test (test_serve_fork()), 0 none */
} Fixture;

/* A stand-in daemon serving handler on {dir}/run/{name}.sock until stop_stand_in(). */
static void start_stand_in(Fixture *f, const char *name, FrameHandler handler) {
        _cleanup_free_ char *sock = NULL;

        assert_int_equal(f->stand_in, 0);
        assert_true(asprintf(&sock, "%s/run/%s.sock", f->dir, name) > 0);
        f->stand_in = test_serve_fork(sock, handler);
}

static void stop_stand_in(Fixture *f) {
        if (f->stand_in <= 0)
                return;
        (void) kill(f->stand_in, SIGKILL);
        (void) waitpid(f->stand_in, NULL, 0);
        f->stand_in = 0;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        f->dir = test_scratch_new("agent");
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        manager_free(f->m);
        stop_stand_in(f);
        test_scratch_remove(f->dir);
        free(f);
        return 0;
}

/* A new Manager on the fixture's folder; the one before it is freed first, as a restart of the agent does. */
static Manager *open_manager(Fixture *f) {
        f->m = manager_free(f->m);
        f->m = make_manager(f->dir);
        return f->m;
}

/* A control command's status, and its JSON or error text. */
static int control(Manager *m, const char *command, const char *argument, char **ret_text) {
        return test_control_command(manager_handle_request, m, command, argument, ret_text);
}

/* A control command that must succeed, its JSON parsed. */
static json_t *control_json(Manager *m, const char *command, const char *argument) {
        _cleanup_free_ char *text = NULL;
        json_t *j;

        assert_int_equal(control(m, command, argument, &text), 0);
        j = json_loads(text, 0, NULL);
        assert_non_null(j);
        return j;
}

static char *read_text(const char *path) {
        _cleanup_free_ char *text = NULL;
        FILE *f = fopen(path, "re");
        long n;

        if (!f)
                return NULL;
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        assert_true(n >= 0);
        rewind(f);
        text = calloc(1, (size_t) n + 1);
        assert_non_null(text);
        assert_int_equal(fread(text, 1, (size_t) n, f), (size_t) n);
        fclose(f);
        return TAKE_PTR(text);
}

static void write_text(const char *path, const char *text, mode_t mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        assert_int_equal(close(fd), 0);
}

static char *saved_file(const char *dir) {
        return path_in(dir, "state/agent/deployment.json");
}

/* ---- deployments ---- */

static void test_deploy_applies_and_survives_restart(void **state) {
        Fixture *f = *state;
        const char *dir = f->dir;
        Manager *m = open_manager(f);
        _cleanup_free_ char *text = manifest(4, MODULE("a", "stopped", "never", "{\"path\": \"/bin/true\"}") ","
                                                MODULE("b", "stopped", "always", "{\"path\": \"/bin/sh\"}"));
        _cleanup_free_ char *error = NULL, *file = saved_file(dir), *saved = NULL;
        json_t *j;
        const char *source = NULL, *schema = NULL;
        json_int_t version = 0, n = 0, code = 0, twin_version = 0;

        /* Nothing saved yet: a fresh agent runs nothing and says nothing about a last deployment. */
        j = control_json(m, "deployment", NULL);
        assert_true(json_is_null(json_object_get(j, "applied")));
        assert_true(json_is_null(json_object_get(j, "last")));
        json_decref(j);
        assert_null(read_text(file));

        assert_int_equal(manager_deploy(m, text, strlen(text), SOURCE_FILE, -1, &error), 0);
        assert_null(error);
        /* A local file's version is its own "$version". */
        assert_int_equal(m->last_version, 4);
        assert_int_equal(m->last_code, DESIRED_OK);
        assert_int_equal(m->source, SOURCE_FILE);
        assert_int_equal(m->n_modules, 2);
        assert_int_equal(manager_find_module(m, "a")->runtime, RUNTIME_STOPPED);
        assert_int_equal(manager_find_module(m, "b")->runtime, RUNTIME_STOPPED);
        /* A file is not the twin: the twin's version and lastDesiredStatus are untouched. */
        assert_int_equal(m->twin_version, -1);
        assert_int_equal(m->twin_code, 0);
        saved = read_text(file);
        assert_non_null(saved);
        assert_non_null(strstr(saved, "\"source\":\"file\""));

        uint64_t applied_at = m->applied_at;
        assert_true(applied_at > 0);

        /* Restarted offline: the saved deployment runs again, and what was said of it stays. */
        m = open_manager(f);
        assert_non_null(m->manifest);
        assert_int_equal(m->n_modules, 2);
        assert_non_null(manager_find_module(m, "a"));
        assert_non_null(manager_find_module(m, "b"));
        assert_int_equal(m->source, SOURCE_FILE);
        assert_int_equal(m->applied_at, applied_at);
        assert_int_equal(m->last_code, DESIRED_OK);
        assert_int_equal(m->last_version, 4);
        assert_int_equal(m->last_source, SOURCE_FILE);

        j = control_json(m, "deployment", NULL);
        assert_int_equal(json_unpack(j, "{s:{s:s, s:I, s:s, s:I}, s:{s:I}, s:I}", "applied", "source", &source,
                                     "version", &version, "schemaVersion", &schema, "modules", &n, "last", "code",
                                     &code, "twinVersion", &twin_version),
                         0);
        assert_string_equal(source, "file");
        assert_int_equal(version, 4);
        assert_string_equal(schema, "1.1");
        assert_int_equal(n, 2);
        assert_int_equal(code, 200);
        assert_int_equal(twin_version, -1);
        json_decref(j);
}

static void test_refused_deployment_keeps_the_running_one(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        _cleanup_free_ char *good = manifest(1, MODULE("a", "stopped", "never", "{\"path\": \"/bin/true\"}"));
        _cleanup_free_ char *missing = manifest(2, MODULE("a", "stopped", "never", "{\"path\": \"/nonexistent/x\"}"));
        _cleanup_free_ char *docker = manifest(3, "\"d\": {\"type\": \"docker\", \"status\": \"running\","
                                                  " \"restartPolicy\": \"always\", \"settings\": {\"image\": \"x\"}}");
        _cleanup_free_ char *error = NULL;
        static const char schema9[] = "{\"schemaVersion\": \"9.0\", \"modules\": {}}";

        assert_int_equal(manager_deploy(m, good, strlen(good), SOURCE_FILE, -1, NULL), 0);
        Manifest *running = m->manifest;
        json_t *running_json = m->manifest_json;

        static const struct {
                const char *text;
                int code;
                const char *error;
        } refusals[] = {
                { "{\"schemaVersion\": \"1.1\"", DESIRED_INVALID, NULL },
                { schema9, DESIRED_BAD_SCHEMA, "unsupported schemaVersion" },
                { NULL, DESIRED_INVALID, "docker" },
                { NULL, DESIRED_INVALID, "/nonexistent/x" },
        };
        for (size_t i = 0; i < ELEMENTSOF(refusals); i++) {
                const char *text = refusals[i].text ? refusals[i].text : i == 2 ? docker : missing;

                free(error);
                error = NULL;
                assert_true(manager_deploy(m, text, strlen(text), SOURCE_FILE, -1, &error) < 0);
                assert_non_null(error);
                if (refusals[i].error)
                        assert_non_null(strstr(error, refusals[i].error));
                /* The running deployment is left exactly as it was. */
                assert_ptr_equal(m->manifest, running);
                assert_ptr_equal(m->manifest_json, running_json);
                assert_int_equal(m->n_modules, 1);
                assert_non_null(manager_find_module(m, "a"));
                /* The refusal is remembered, with why, as edgeAgent's code. */
                assert_int_equal(m->last_code, refusals[i].code);
                assert_string_equal(m->last_description, error);
        }
        /* A manifest that parsed names its version; one that did not has none to name. */
        assert_int_equal(m->last_version, 2);

        /* The refusal outlives a restart; the deployment that runs is still the good one. */
        _cleanup_free_ char *said = strdup(m->last_description);
        m = open_manager(f);
        assert_non_null(m->manifest);
        assert_int_equal(m->manifest->version, 1);
        assert_int_equal(m->n_modules, 1);
        assert_int_equal(m->last_code, DESIRED_INVALID);
        assert_int_equal(m->last_version, 2);
        assert_string_equal(m->last_description, said);
}

static void test_twin_deployments(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        _cleanup_free_ char *v5 = manifest(-1, MODULE("a", "stopped", "never", "{\"path\": \"/bin/true\"}"));
        _cleanup_free_ char *v6 = manifest(-1, MODULE("b", "stopped", "never", "{\"path\": \"/bin/true\"}"));
        _cleanup_free_ char *v7 = manifest(-1, MODULE("c", "stopped", "never", "{\"path\": \"/nonexistent/c\"}"));
        json_auto_t *d5 = json_loads(v5, 0, NULL), *d6 = json_loads(v6, 0, NULL), *d7 = json_loads(v7, 0, NULL);
        json_auto_t *empty = json_pack("{s:i}", "$version", 9);
        json_t *status;

        assert_non_null(d5);
        assert_non_null(d6);
        assert_non_null(d7);
        assert_int_equal(json_object_set_new(d5, "$version", json_integer(5)), 0);
        assert_int_equal(json_object_set_new(d5, "$metadata", json_object()), 0);
        manager_twin_desired(m, d5);
        assert_int_equal(m->source, SOURCE_TWIN);
        assert_int_equal(m->twin_version, 5);
        assert_int_equal(m->twin_code, DESIRED_OK);
        assert_non_null(manager_find_module(m, "a"));
        /* The twin's bookkeeping is not part of what runs, nor of what is saved. */
        assert_null(json_object_get(m->manifest_json, "$metadata"));

        /* The same version again (a poll): handled already, whatever the document says now. */
        assert_int_equal(json_object_set_new(d6, "$version", json_integer(5)), 0);
        manager_twin_desired(m, d6);
        assert_non_null(manager_find_module(m, "a"));
        assert_null(manager_find_module(m, "b"));
        assert_int_equal(m->twin_version, 5);

        /* A new version replaces the modules: "a" (not running) goes at once. */
        assert_int_equal(json_object_set_new(d6, "$version", json_integer(6)), 0);
        manager_twin_desired(m, d6);
        assert_null(manager_find_module(m, "a"));
        assert_non_null(manager_find_module(m, "b"));
        assert_int_equal(m->twin_version, 6);

        /* A twin without a deployment (a new edge device's) keeps what runs and is not an answer. */
        manager_twin_desired(m, empty);
        assert_non_null(manager_find_module(m, "b"));
        assert_int_equal(m->twin_version, 6);

        /* Refused from the twin: lastDesiredStatus says so, for that version; "b" keeps running. */
        assert_int_equal(json_object_set_new(d7, "$version", json_integer(7)), 0);
        manager_twin_desired(m, d7);
        assert_non_null(manager_find_module(m, "b"));
        assert_int_equal(m->twin_version, 7);
        assert_int_equal(m->twin_code, DESIRED_INVALID);
        json_auto_t *doc = manager_reported_document(m);
        assert_non_null(doc);
        assert_int_equal(json_integer_value(json_object_get(doc, "lastDesiredVersion")), 7);
        status = json_object_get(doc, "lastDesiredStatus");
        assert_int_equal(json_integer_value(json_object_get(status, "code")), 400);
        assert_non_null(strstr(json_string_value(json_object_get(status, "description")), "/nonexistent/c"));

        /* After a restart the twin's refusal is still what is reported, and version 7 is not tried again. */
        m = open_manager(f);
        assert_int_equal(m->twin_version, 7);
        assert_int_equal(m->twin_code, DESIRED_INVALID);
        assert_int_equal(m->source, SOURCE_TWIN);
        assert_non_null(manager_find_module(m, "b"));
        manager_twin_desired(m, d7);
        assert_int_equal(m->twin_code, DESIRED_INVALID);
        assert_non_null(manager_find_module(m, "b"));
}

static void test_malformed_saved_file(void **state) {
        Fixture *f = *state;
        const char *dir = f->dir;
        _cleanup_free_ char *agent = path_in(dir, "state/agent"), *file = saved_file(dir);
        static const char *const bad[] = {
                "{\"manifest\": ",
                "[1, 2]",
                "{\"manifest\": 3}",
                "{\"twinVersion\": \"seven\"}",
        };

        assert_int_equal(mkdir_parents(agent, 0750), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                write_text(file, bad[i], 0600);
                /* Someone else wrote it: the agent starts empty rather than never, and leaves the file for a human. */
                Manager *m = open_manager(f);
                assert_null(m->manifest);
                assert_int_equal(m->n_modules, 0);
                assert_int_equal(m->twin_version, -1);
                assert_int_equal(m->last_code, 0);
                _cleanup_free_ char *after = read_text(file);
                assert_string_equal(after, bad[i]);
        }
}

static void test_saved_deployment_that_no_longer_applies(void **state) {
        Fixture *f = *state;
        const char *dir = f->dir;
        _cleanup_free_ char *exe = path_in(dir, "module.sh"), *file = saved_file(dir), *modules = NULL;
        _cleanup_free_ char *text = NULL, *before = NULL, *after = NULL;

        write_text(exe, "#!/bin/sh\nexit 0\n", 0755);
        assert_true(asprintf(&modules, MODULE("a", "stopped", "never", "{\"path\": \"%s\"}"), exe) > 0);
        text = manifest(2, modules);
        Manager *m = open_manager(f);
        assert_int_equal(manager_deploy(m, text, strlen(text), SOURCE_FILE, -1, NULL), 0);
        before = read_text(file);
        assert_non_null(before);

        /* Its executable is gone when the agent starts again: it runs nothing, and says why. */
        assert_int_equal(unlink(exe), 0);
        m = open_manager(f);
        assert_null(m->manifest);
        assert_int_equal(m->n_modules, 0);
        assert_int_equal(m->last_code, DESIRED_INVALID);
        assert_non_null(strstr(m->last_description, exe));
        /* The file stays as it was: putting the executable back (or a new deployment) fixes it. */
        after = read_text(file);
        assert_string_equal(after, before);
        write_text(exe, "#!/bin/sh\nexit 0\n", 0755);
        m = open_manager(f);
        assert_non_null(m->manifest);
        assert_non_null(manager_find_module(m, "a"));
}

/* The stand-in hub-store: takes /tmp/... folders and refuses any other. */
static int store_handler(void *userdata, const Frame *request, FrameBuilder *reply) {
        _cleanup_free_ char *folder = NULL;

        if (request->type != WIRE_STORAGE_FOLDER_REQUEST || frame_get_string(request, WIRE_ARGUMENT, &folder) < 0)
                return -EBADMSG;
        if (strncmp(folder, "/tmp/", 5) == 0)
                wire_reply_init(reply, WIRE_STORAGE_FOLDER_REPLY, 0, NULL);
        else
                wire_reply_init(reply, WIRE_STORAGE_FOLDER_REPLY, EACCES, "not writable by the hub");
        return 0;
}

static char *manifest_with_folder(const char *folder) {
        _cleanup_free_ char *env = NULL, *system = NULL;
        char *text = NULL;

        assert_true(asprintf(&env, ", \"storageFolder\": {\"value\": \"%s\"}", folder) > 0);
        assert_true(asprintf(&system, SYSTEM_MODULES, env) > 0);
        assert_true(asprintf(&text, "{\"schemaVersion\": \"1.1\", %s, \"modules\": {}}", system) > 0);
        return text;
}

static void test_storage_folder(void **state) {
        Fixture *f = *state;
        const char *dir = f->dir;
        Manager *m = open_manager(f);
        _cleanup_free_ char *error = NULL;
        _cleanup_free_ char *refused = manifest_with_folder("/srv/store"), *taken = NULL, *moved = NULL;

        assert_true(asprintf(&moved, "%s/moved", dir) > 0);
        taken = manifest_with_folder(moved);

        /* hub-store not running: the deployment goes ahead, and the folder waits to be told. */
        assert_int_equal(manager_deploy(m, taken, strlen(taken), SOURCE_FILE, -1, NULL), 0);
        assert_string_equal(m->storage_pending, moved);
        assert_null(m->storage_sent);

        start_stand_in(f, "hub-store", store_handler);

        /* Refused by hub-store: the whole deployment is refused, with hub-store's reason. */
        Manifest *running = m->manifest;
        assert_int_equal(manager_deploy(m, refused, strlen(refused), SOURCE_FILE, -1, &error), -EACCES);
        assert_string_equal(error, "systemModules.edgeHub.env.storageFolder: not writable by the hub");
        assert_ptr_equal(m->manifest, running);
        assert_int_equal(m->last_code, DESIRED_INVALID);

        /* Accepted: remembered as sent, nothing left pending. */
        assert_int_equal(manager_deploy(m, taken, strlen(taken), SOURCE_FILE, -1, NULL), 0);
        assert_string_equal(m->storage_sent, moved);
        assert_null(m->storage_pending);

        /* The same folder again is not asked for: the deployment applies with hub-store gone. */
        stop_stand_in(f);
        assert_int_equal(manager_deploy(m, taken, strlen(taken), SOURCE_FILE, -1, NULL), 0);
        assert_string_equal(m->storage_sent, moved);
        assert_null(m->storage_pending);
}

/* ---- modules ---- */

/* The stand-in auth-cache: edge1/known has a key; every other identity is unknown. */
static int auth_handler(void *userdata, const Frame *request, FrameBuilder *reply) {
        _cleanup_free_ char *identity = NULL;

        if (request->type != WIRE_KEY_REQUEST || frame_get_string(request, WIRE_IDENTITY, &identity) < 0)
                return -EBADMSG;
        if (strcmp(identity, "edge1/mod") == 0 || strcmp(identity, "edge1/known") == 0) {
                wire_reply_init(reply, WIRE_KEY_REPLY, 0, NULL);
                frame_builder_add_string(reply, WIRE_KEY, "a2V5");
        } else if (strcmp(identity, "edge1/x509") == 0) {
                wire_reply_init(reply, WIRE_KEY_REPLY, 0, NULL);
                frame_builder_add_string(reply, WIRE_IDENTITY, "edge1/$edgeHub");
        } else
                wire_reply_init(reply, WIRE_KEY_REPLY, ENOENT, "not in the device scope");
        return 0;
}


static void test_module_keys(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        char *key = NULL;

        /* auth-cache not running: refused, which must not read as "no such identity". */
        assert_int_equal(manager_fetch_module_key(m, "edge1/mod", &key), -ECONNREFUSED);

        start_stand_in(f, "auth-cache", auth_handler);

        assert_int_equal(manager_fetch_module_key(m, "edge1/mod", &key), 0);
        assert_string_equal(key, "a2V5");
        auth_key_freep(&key);
        /* A module needs a key of its own: a signer on its behalf is no answer for it. */
        assert_int_equal(manager_fetch_module_key(m, "edge1/x509", &key), -EBADMSG);
        assert_null(key);
        assert_int_equal(manager_fetch_module_key(m, "edge1/gone", &key), -ENOENT);
        assert_null(key);

}

static void test_modules_wait_for_the_broker(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        _cleanup_free_ char *text = manifest(1, MODULE("run", "running", "always", "{\"path\": \"/bin/true\"}") ","
                                                MODULE("rest", "stopped", "always", "{\"path\": \"/bin/true\"}"));
        Module *run, *rest;

        assert_int_equal(manager_deploy(m, text, strlen(text), SOURCE_FILE, -1, NULL), 0);
        run = manager_find_module(m, "run");
        rest = manager_find_module(m, "rest");
        assert_non_null(run);
        assert_non_null(rest);

        /* Before the bus connected: nothing forks, nothing backs off, and hubctl says why. */
        assert_false(m->broker_reached);
        assert_int_equal(run->pid, 0);
        assert_int_equal(run->runtime, RUNTIME_UNKNOWN);
        assert_string_equal(run->description, "waiting for the broker");
        assert_null(run->restart_timer);
        assert_int_equal(run->backoff_usec, 0);
        assert_int_equal(rest->runtime, RUNTIME_STOPPED);

        /* An explicit start is no way around it either. */
        manager_module_start(m, run);
        assert_int_equal(run->pid, 0);
        assert_int_equal(run->runtime, RUNTIME_UNKNOWN);

        /*
         * The broker is reached: the waiting module starts. auth-cache is not
         * there, so the start fails and backs off as a crash would; the
         * stopped module stays stopped.
         */
        manager_start_waiting_modules(m);
        assert_true(m->broker_reached);
        assert_int_equal(run->pid, 0);
        assert_int_equal(run->runtime, RUNTIME_BACKOFF);
        assert_int_equal(run->backoff_usec, MODULE_BACKOFF_MIN_USEC);
        assert_non_null(run->restart_timer);
        assert_non_null(strstr(run->description, "cannot get the key of 'edge1/run' from auth-cache"));
        assert_int_equal(run->restart_count, 0);
        assert_int_equal(rest->runtime, RUNTIME_STOPPED);
        assert_null(rest->restart_timer);

        /* Heard again (a broker reconnect): a module waiting out its back-off is not started early. */
        manager_start_waiting_modules(m);
        assert_int_equal(run->backoff_usec, MODULE_BACKOFF_MIN_USEC);
        assert_int_equal(run->runtime, RUNTIME_BACKOFF);
}

static void test_failed_starts_back_off(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        _cleanup_free_ char *v1 = manifest(1, MODULE("lost", "running", "never", "{\"path\": \"/bin/true\"}"));
        _cleanup_free_ char *v2 = manifest(2, MODULE("lost", "running", "never",
                                                     "{\"path\": \"/bin/true\", \"args\": [\"x\"]}"));
        start_stand_in(f, "auth-cache", auth_handler);
        Module *mod;

        m->broker_reached = true;
        assert_int_equal(manager_deploy(m, v1, strlen(v1), SOURCE_FILE, -1, NULL), 0);
        mod = manager_find_module(m, "lost");
        assert_non_null(mod);

        /* Not in the device scope: never forked, whatever the policy; the description says what to do. */
        assert_int_equal(mod->pid, 0);
        assert_int_equal(mod->runtime, RUNTIME_BACKOFF);
        assert_non_null(strstr(mod->description, "identity 'edge1/lost' is not in the device scope"));

        /* Each failed start doubles the wait, up to the cap: one try per period, never a storm. */
        uint64_t expect = MODULE_BACKOFF_MIN_USEC;
        for (unsigned i = 0; i < 12; i++) {
                assert_int_equal(mod->backoff_usec, expect);
                manager_module_start(m, mod);
                expect = expect * 2 > MODULE_BACKOFF_MAX_USEC ? MODULE_BACKOFF_MAX_USEC : expect * 2;
        }
        assert_int_equal(mod->backoff_usec, MODULE_BACKOFF_MAX_USEC);
        /* Starts asked for are not restarts: restartCount counts only the back-off's own. */
        assert_int_equal(mod->restart_count, 0);

        /* A changed module starts over: from the shortest wait again. */
        assert_int_equal(manager_deploy(m, v2, strlen(v2), SOURCE_FILE, -1, NULL), 0);
        assert_ptr_equal(manager_find_module(m, "lost"), mod);
        assert_int_equal(mod->backoff_usec, MODULE_BACKOFF_MIN_USEC);
        assert_int_equal(mod->runtime, RUNTIME_BACKOFF);

}

/* Runs the loop until mod has no process; each iteration waits for an event, not for time. */
static void wait_exit(Manager *m, Module *mod) {
        for (unsigned i = 0; mod->pid > 0; i++) {
                assert_true(i < 1000);
                assert_true(sd_event_run(m->event, 60u * 1000u * 1000u) >= 0);
        }
}

static void test_module_runs_and_exits(void **state) {
        Fixture *f = *state;
        const char *dir = f->dir;
        Manager *m = open_manager(f);
        _cleanup_free_ char *out = path_in(dir, "out"), *modules = NULL, *text = NULL, *seen = NULL;
        start_stand_in(f, "auth-cache", auth_handler);
        json_t *j;

        assert_true(asprintf(&modules,
                             MODULE("known", "running", "on-failure",
                                    "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"echo $IOTEDGE_MODULEID > %s; exit 3\"]}"),
                             out) > 0);
        text = manifest(1, modules);
        assert_int_equal(manager_deploy(m, text, strlen(text), SOURCE_FILE, -1, NULL), 0);
        Module *mod = manager_find_module(m, "known");
        assert_non_null(mod);
        assert_int_equal(mod->pid, 0);

        manager_start_waiting_modules(m);
        assert_true(mod->pid > 0);
        assert_int_equal(mod->runtime, RUNTIME_RUNNING);
        assert_string_equal(mod->description, "running");
        assert_int_equal(strlen(mod->generation_id), 16);
        assert_true(mod->last_start > 0);

        /* hubctl modules shows the process while it runs. */
        j = control_json(m, "modules", NULL);
        json_t *row = json_array_get(json_object_get(j, "modules"), 0);
        assert_string_equal(json_string_value(json_object_get(row, "name")), "known");
        assert_int_equal(json_integer_value(json_object_get(row, "pid")), mod->pid);
        assert_true(json_is_true(json_object_get(row, "deployed")));
        json_decref(j);

        wait_exit(m, mod);
        /* It ran as the module, and its failure is what on-failure restarts: after the shortest wait. */
        seen = read_text(out);
        assert_string_equal(seen, "known\n");
        assert_int_equal(mod->exit_code, 3);
        assert_string_equal(mod->description, "exited with code 3");
        assert_true(mod->last_exit >= mod->last_start);
        assert_int_equal(mod->runtime, RUNTIME_BACKOFF);
        assert_int_equal(mod->backoff_usec, MODULE_BACKOFF_MIN_USEC);
        assert_non_null(mod->restart_timer);

        /* A module that exits cleanly under on-failure is stopped, not failed, and not restarted. */
        _cleanup_free_ char *clean = NULL, *v2 = NULL;
        assert_true(asprintf(&clean, MODULE("known", "running", "on-failure",
                                            "{\"path\": \"/bin/sh\", \"args\": [\"-c\", \"exit 0\"]}")) > 0);
        v2 = manifest(2, clean);
        assert_int_equal(manager_deploy(m, v2, strlen(v2), SOURCE_FILE, -1, NULL), 0);
        assert_ptr_equal(manager_find_module(m, "known"), mod);
        assert_true(mod->pid > 0);
        wait_exit(m, mod);
        assert_int_equal(mod->exit_code, 0);
        assert_int_equal(mod->runtime, RUNTIME_STOPPED);
        assert_null(mod->restart_timer);

}

/* ---- status and control ---- */

static void test_module_json(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        _cleanup_free_ char *text = manifest(1, MODULE("m", "running", "on-unhealthy", "{\"path\": \"/bin/true\"}"));
        _cleanup_free_ char *dumped = NULL;

        assert_int_equal(manager_deploy(m, text, strlen(text), SOURCE_FILE, -1, NULL), 0);
        Module *mod = manager_find_module(m, "m");
        assert_non_null(mod);
        mod->runtime = RUNTIME_FAILED;
        mod->exit_code = 137;
        assert_int_equal(free_and_strdup(&mod->description, "killed by signal 9 (Killed)"), 0);
        mod->restart_count = 2;
        mod->last_start = 1700000000123456ull;
        mod->last_exit = 1700000001000000ull;
        mod->last_restart = 0;

        json_auto_t *j = manager_module_json(m, mod);
        assert_non_null(j);
        dumped = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        assert_string_equal(dumped,
                            "{\"exitCode\":137,\"lastExitTimeUtc\":\"2023-11-14T22:13:21.000Z\","
                            "\"lastRestartTimeUtc\":\"0001-01-01T00:00:00Z\","
                            "\"lastStartTimeUtc\":\"2023-11-14T22:13:20.123Z\",\"restartCount\":2,"
                            "\"restartPolicy\":\"on-unhealthy\",\"runtimeStatus\":\"failed\",\"status\":\"running\","
                            "\"statusDescription\":\"killed by signal 9 (Killed)\",\"type\":\"process\","
                            "\"version\":\"1.0\"}");

        /* Left the deployment (its process still stopping): no desired status or policy to show. */
        mod->spec = NULL;
        json_auto_t *gone = manager_module_json(m, mod);
        assert_null(json_object_get(gone, "status"));
        assert_null(json_object_get(gone, "restartPolicy"));
        assert_null(json_object_get(gone, "version"));
        assert_string_equal(json_string_value(json_object_get(gone, "runtimeStatus")), "failed");

        /* ... and the reported document leaves it out (the patch reports it as null). */
        json_auto_t *doc = manager_reported_document(m);
        assert_non_null(doc);
        assert_int_equal(json_object_size(json_object_get(doc, "modules")), 0);
        assert_string_equal(json_string_value(json_object_get(doc, "schemaVersion")), "1.1");
        /* No twin deployment handled yet: nothing to say as lastDesiredStatus. */
        assert_null(json_object_get(doc, "lastDesiredStatus"));
        assert_null(json_object_get(doc, "lastDesiredVersion"));
}

static void test_request_access(void **state) {
        static const struct {
                uint16_t type;
                const char *command;
                unsigned access;
        } cases[] = {
                { WIRE_CONTROL_REQUEST, "deploy", PEER_ADMIN },
                { WIRE_CONTROL_REQUEST, "modules", PEER_READ },
                { WIRE_CONTROL_REQUEST, "deployment", PEER_READ },
                { WIRE_CONTROL_REQUEST, "deployx", PEER_READ },
                { WIRE_CONTROL_REQUEST, NULL, PEER_READ },
                { WIRE_KEY_REQUEST, "deploy", PEER_READ },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(frame_builder_deinit) FrameBuilder b = FRAME_BUILDER_NULL;
                Frame f;

                frame_builder_init(&b, cases[i].type);
                if (cases[i].command)
                        frame_builder_add_string(&b, WIRE_COMMAND, cases[i].command);
                assert_int_equal(frame_builder_finish(&b), 0);
                assert_int_equal(frame_parse(&f, b.buf + FRAME_HEADER_SIZE, b.len - FRAME_HEADER_SIZE), 0);
                assert_int_equal(manager_request_access(NULL, &f), cases[i].access);
        }
}

static void test_control_commands(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        _cleanup_free_ char *good = manifest(3, MODULE("a", "stopped", "never", "{\"path\": \"/bin/true\"}"));
        char *text;
        json_t *j;

        assert_int_equal(control(m, "modules", NULL, &text), 0);
        assert_string_equal(text, "{\"modules\":[]}");
        free(text);
        assert_int_equal(control(m, "deploy", NULL, &text), -EINVAL);
        assert_string_equal(text, "a manifest is required");
        free(text);
        /* A manifest that does not parse is refused, and nothing is deployed. */
        assert_int_equal(control(m, "deploy", "{\"modulesContent\": 1", &text), -EINVAL);
        free(text);
        assert_int_equal(m->n_modules, 0);
        assert_int_equal(control(m, "restart", NULL, &text), -EINVAL);
        assert_string_equal(text, "unknown command; known: modules, deployment, deploy");
        free(text);

        /* deploy answers with the deployment as "deployment" shows it. */
        j = control_json(m, "deploy", good);
        json_t *applied = json_object_get(j, "applied");
        assert_string_equal(json_string_value(json_object_get(applied, "source")), "file");
        assert_int_equal(json_integer_value(json_object_get(applied, "version")), 3);
        assert_int_equal(json_integer_value(json_object_get(applied, "modules")), 1);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "last"), "code")), 200);
        assert_true(json_is_false(json_object_get(j, "busConnected")));
        assert_true(json_is_false(json_object_get(j, "linkUp")));
        json_decref(j);

        j = control_json(m, "modules", NULL);
        json_t *row = json_array_get(json_object_get(j, "modules"), 0);
        assert_int_equal(json_array_size(json_object_get(j, "modules")), 1);
        assert_string_equal(json_string_value(json_object_get(row, "name")), "a");
        assert_string_equal(json_string_value(json_object_get(row, "runtimeStatus")), "stopped");
        assert_int_equal(json_integer_value(json_object_get(row, "pid")), 0);
        assert_int_equal(json_integer_value(json_object_get(row, "backoffMs")), 0);
        json_decref(j);

        /* A refusal through hubctl: EINVAL with the reason, and "deployment" shows it as the last one. */
        assert_int_equal(control(m, "deploy", "{\"schemaVersion\": \"2.0\", \"modules\": {}}", &text), -EINVAL);
        assert_non_null(strstr(text, "unsupported schemaVersion"));
        free(text);
        j = control_json(m, "deployment", NULL);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "applied"), "version")), 3);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "last"), "code")), 412);
        json_decref(j);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_deploy_applies_and_survives_restart, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_refused_deployment_keeps_the_running_one, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_twin_deployments, setup, teardown),
                cmocka_unit_test_setup_teardown(test_malformed_saved_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_saved_deployment_that_no_longer_applies, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_storage_folder, setup, teardown),
                cmocka_unit_test_setup_teardown(test_module_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_modules_wait_for_the_broker, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_failed_starts_back_off, setup, teardown),
                cmocka_unit_test_setup_teardown(test_module_runs_and_exits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_module_json, setup, teardown),
                cmocka_unit_test(test_request_access),
                cmocka_unit_test_setup_teardown(test_control_commands, setup, teardown),
        };
        sigset_t mask;

        log_set_max_level(LOG_CRIT);
        test_block_daemon_signals();
        /* sd-event's child sources need SIGCHLD blocked, as the agent's main() does. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        assert_int_equal(sigprocmask(SIG_BLOCK, &mask, NULL), 0);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
