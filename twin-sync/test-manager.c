/* Tests of twin-sync's core without a broker: twin cache and reported queue on disk, links, uplink, control */
#include <errno.h>
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

#include <cmocka.h>
#include <jansson.h>

#include "proto/ipc/client.h"
#include "proto/ipc/peer.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/runtime/test-daemon.h"
#include "proto/util/cleanup.h"
#include "twin-sync/manager.h"
#include "twin-sync/twin-store.h"

/* A scratch folder, and the Manager on it the teardown frees (a failed assertion leaves it behind). */
typedef struct Fixture {
        char *dir;
        Manager *m;
        pid_t stand_in;   /* a stand-in hub-store (test_serve_fork()), 0 none */
} Fixture;

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        f->dir = test_scratch_new("twin-sync");
        *state = f;
        return 0;
}

static void stop_stand_in(Fixture *f) {
        if (f->stand_in <= 0)
                return;
        (void) kill(f->stand_in, SIGKILL);
        (void) waitpid(f->stand_in, NULL, 0);
        f->stand_in = 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        manager_free(f->m);
        stop_stand_in(f);
        test_scratch_remove(f->dir);
        free(f);
        return 0;
}

/*
 * A Manager with its store and a bus that never connects: what it would
 * send (upstream, or answers to devices) is dropped, so these tests look at
 * the state it keeps. hub-store is expected at {dir}/run/hub-store.sock.
 * The one before it is freed first, as a restart of the daemon does.
 */
static Manager *open_manager(Fixture *f) {
        static const BusHandlers handlers = { .message = manager_on_bus_message };
        _cleanup_free_ char *broker = NULL, *run = NULL;
        Config *config = test_config_new(f->dir);
        Manager *m = NULL;

        f->m = manager_free(f->m);
        assert_true(asprintf(&run, "%s/run", f->dir) > 0);
        assert_true(mkdir(run, 0755) == 0 || errno == EEXIST);
        assert_int_equal(manager_new(&m, &config), 0);
        f->m = m;
        assert_int_equal(manager_open_store(m), 0);
        assert_true(asprintf(&broker, "%s/broker.sock", run) > 0);
        assert_true(asprintf(&m->hub_store_socket, "%s/hub-store.sock", run) > 0);
        assert_int_equal(bus_new(&m->bus, m->event, broker, "twin-sync", &handlers, m), 0);
        return m;
}

static void bus_message(Manager *m, const char *topic, const char *client, const char *payload) {
        BusMessage msg = { .topic = topic, .payload = payload, .len = strlen(payload), .client = client };
        manager_on_bus_message(m->bus, &msg, m);
}

/* A device's reported patch, as the plugin puts it on the bus. */
static void device_reported(Manager *m, const char *identity, const char *rid, const char *patch) {
        _cleanup_free_ char *topic = NULL;

        assert_true(asprintf(&topic, BUS_PREFIX_DEVICE TWIN_TOPIC_REPORTED_RID "%s", rid) > 0);
        bus_message(m, topic, identity, patch);
}

/* A control command's status, and its JSON (parsed) or error text. */
static int control(Manager *m, const char *command, const char *argument, json_t **ret_json, char **ret_error) {
        char *text = NULL;
        int status;

        status = test_control_command(manager_handle_request, m, command, argument, &text);
        *ret_json = NULL;
        *ret_error = NULL;
        if (status == 0) {
                *ret_json = json_loads(text, 0, NULL);
                assert_non_null(*ret_json);
                free(text);
        } else
                *ret_error = text;
        return status;
}

/* hubctl twin ID: must succeed. */
static json_t *twin_json(Manager *m, const char *identity) {
        json_t *j;
        char *error = NULL;

        assert_int_equal(control(m, "twin", identity, &j, &error), 0);
        return j;
}

/* The twin's "link" as hubctl shows it. */
static char *link_of(Manager *m, const char *identity) {
        json_auto_t *j = twin_json(m, identity);
        const char *s = NULL;

        assert_int_equal(json_unpack(j, "{s:s}", "link", &s), 0);
        return strdup(s);
}

static void assert_json_equal(const json_t *j, const char *expected) {
        json_auto_t *e = json_loads(expected, 0, NULL);
        _cleanup_free_ char *got = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

        assert_non_null(e);
        if (!json_equal((json_t *) j, e))
                fail_msg("got %s, expected %s", got, expected);
}

/* ---- links and the uplink ---- */

static void test_link_state_from_the_bus(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL;

        /* Heard of only by presence: no link announced yet. */
        bus_message(m, BUS_TOPIC_PRESENCE, "dev2", "connected");
        a = link_of(m, "dev2");
        assert_string_equal(a, "unknown");
        assert_false(m->heard_link);

        bus_message(m, BUS_TOPIC_LINK, "dev1", "up");
        b = link_of(m, "dev1");
        assert_string_equal(b, "up");
        assert_int_equal(m->links_up, 1);
        assert_true(m->heard_link);
        /* Announced twice, counted once. */
        bus_message(m, BUS_TOPIC_LINK, "dev1", "up");
        assert_int_equal(m->links_up, 1);

        bus_message(m, BUS_TOPIC_LINK, "dev1", "down");
        c = link_of(m, "dev1");
        assert_string_equal(c, "down");
        assert_int_equal(m->links_up, 0);

        /* Neither "up" nor "down" (nor a prefix of them) changes nothing. */
        bus_message(m, BUS_TOPIC_LINK, "dev1", "upp");
        bus_message(m, BUS_TOPIC_LINK, "dev1", "u");
        d = link_of(m, "dev1");
        assert_string_equal(d, "down");
        assert_int_equal(m->links_up, 0);
}

static void test_online_rule(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        Twin *dev = manager_twin(m, "dev"), *other = manager_twin(m, "other");

        /* No link heard of since the start: the cloud gets its chance first. */
        assert_true(manager_online(m, dev));
        /* Another identity's link down: known, and all down, so the cache answers. */
        bus_message(m, BUS_TOPIC_LINK, "other", "down");
        assert_false(manager_online(m, dev));
        assert_false(manager_online(m, other));
        /* Any link up: the uplink works, hub-store opens this identity's link on demand. */
        bus_message(m, BUS_TOPIC_LINK, "other", "up");
        assert_true(manager_online(m, dev));
        bus_message(m, BUS_TOPIC_LINK, "other", "down");
        assert_false(manager_online(m, dev));
}

/* What the stand-in hub-store says to "status"; set before it forks. */
static const char *uplink_answer;

/*
 * The stand-in hub-store: "status" answers uplink_answer; a configuration
 * (WIRE_CONFIG_APPLY_REQUEST) is refused when it names a route "bad".
 */
static int hub_store_handler(void *userdata, const Frame *request, FrameBuilder *reply) {
        _cleanup_free_ char *command = NULL, *config = NULL;

        if (request->type == WIRE_CONFIG_APPLY_REQUEST) {
                if (frame_get_string(request, WIRE_JSON, &config) < 0)
                        return -EBADMSG;
                if (strstr(config, "\"bad\""))
                        wire_reply_init(reply, WIRE_CONFIG_APPLY_REPLY, EINVAL, "route 'bad': does not parse");
                else
                        wire_reply_init(reply, WIRE_CONFIG_APPLY_REPLY, 0, NULL);
                return 0;
        }
        if (request->type != WIRE_CONTROL_REQUEST || frame_get_string(request, WIRE_COMMAND, &command) < 0 ||
            strcmp(command, "status") != 0)
                return -EBADMSG;
        wire_reply_init(reply, WIRE_CONTROL_REPLY, 0, NULL);
        frame_builder_add_string(reply, WIRE_JSON, uplink_answer);
        return 0;
}

static void test_uplink_status_at_bus_connect(void **state) {
        Fixture *f = *state;
        _cleanup_free_ char *sock = NULL;
        static const struct {
                const char *answer; /* NULL: hub-store not running */
                bool offline;
        } cases[] = {
                { NULL, false },
                { "{\"uplink\": \"down\", \"links_up\": 0, \"offline_since_ms\": 1700000000000}", true },
                /* Down but no link failed yet (just started): not known to be offline. */
                { "{\"uplink\": \"down\", \"links_up\": 0, \"offline_since_ms\": null}", false },
                { "{\"uplink\": \"up\", \"links_up\": 2, \"offline_since_ms\": null}", false },
                { "{\"uplink\": \"idle\", \"links_up\": 0, \"offline_since_ms\": null}", false },
                { "{\"uplink\": \"sideways\", \"links_up\": 0, \"offline_since_ms\": 1}", false },
        };

        assert_true(asprintf(&sock, "%s/run/hub-store.sock", f->dir) > 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Manager *m = open_manager(f);
                Twin *t = manager_twin(m, "dev");

                if (cases[i].answer) {
                        uplink_answer = cases[i].answer;
                        f->stand_in = test_serve_fork(sock, hub_store_handler);
                }
                manager_on_bus_connected(m->bus, m);
                /* Offline as hub-store says: a restarted twin-sync answers GETs from the cache at once. */
                assert_int_equal(m->heard_link, cases[i].offline);
                assert_int_equal(manager_online(m, t), !cases[i].offline);
                stop_stand_in(f);
        }

        /* A link announced before the answer is fresher news than hub-store's summary: nothing to ask. */
        Manager *m = open_manager(f);
        uplink_answer = cases[1].answer;
        f->stand_in = test_serve_fork(sock, hub_store_handler);
        bus_message(m, BUS_TOPIC_LINK, "dev", "up");
        manager_on_bus_connected(m->bus, m);
        assert_int_equal(m->links_up, 1);
        assert_true(manager_online(m, manager_twin(m, "other")));
}

/* ---- GET ---- */

static void test_get_answered_from_the_cache_while_offline(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        Twin *t;

        /* Online (nothing heard yet): the device's GET asks the cloud; its answer serves the device. */
        bus_message(m, BUS_PREFIX_DEVICE "twin/GET/?$rid=1", "dev", "");
        t = manager_twin(m, "dev");
        /* The bus is down here, so the fetch ended at once; the id it sent stays, for a late answer. */
        assert_non_null(t->late_fetch_rid);
        assert_null(t->fetch_rid);
        assert_null(t->waiters);

        /* Offline: answered from the cache, the cloud is not asked. */
        free(t->late_fetch_rid);
        t->late_fetch_rid = NULL;
        bus_message(m, BUS_TOPIC_LINK, "dev", "down");
        bus_message(m, BUS_PREFIX_DEVICE "twin/GET/?$rid=2", "dev", "");
        assert_null(t->late_fetch_rid);
        assert_null(t->fetch_rid);
        assert_null(t->waiters);

        /* A GET without $rid is nobody's to answer, and a GET of an unknown kind neither: no twin appears. */
        bus_message(m, BUS_PREFIX_DEVICE "twin/GET/", "nobody", "");
        bus_message(m, BUS_PREFIX_DEVICE "twin/DELETE/?$rid=3", "nobody", "");
        assert_null(key_map_get(&m->twins, "nobody", 6));
}

/* ---- desired from the cloud ---- */

static void cloud_desired(Manager *m, const char *identity, int64_t version, const char *patch) {
        _cleanup_free_ char *topic = NULL;

        assert_true(asprintf(&topic, BUS_PREFIX_CLOUD "twin/PATCH/properties/desired/?$version=%lld",
                             (long long) version) > 0);
        bus_message(m, topic, identity, patch);
}

static void test_desired_cache_across_restart(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        _cleanup_free_ char *topic = NULL, *rid = NULL;
        Twin *t;

        /* Patches in order are merged into the cache; a stale or malformed one changes nothing. */
        cloud_desired(m, "dev", 1, "{\"a\": 1, \"b\": {\"c\": 2}, \"$version\": 1}");
        cloud_desired(m, "dev", 2, "{\"b\": {\"c\": null, \"d\": 3}, \"$version\": 2}");
        cloud_desired(m, "dev", 1, "{\"a\": 99, \"$version\": 1}");
        cloud_desired(m, "dev", 3, "{\"a\": ");
        t = manager_twin(m, "dev");
        assert_int_equal(t->desired_version, 2);
        assert_json_equal(t->desired, "{\"a\": 1, \"b\": {\"d\": 3}}");
        assert_null(t->late_fetch_rid);

        /* A gap: patches were missed, so the whole twin is fetched (here it cannot go: the bus is down). */
        cloud_desired(m, "dev", 5, "{\"a\": 5, \"$version\": 5}");
        assert_int_equal(t->desired_version, 2);
        assert_non_null(t->late_fetch_rid);

        /* The cloud's late answer to that fetch is still the cloud's twin: it replaces the cache. */
        rid = strdup(t->late_fetch_rid);
        assert_true(asprintf(&topic, BUS_PREFIX_CLOUD "twin/res/200/?$rid=%s", rid) > 0);
        bus_message(m, topic, "dev",
                    "{\"desired\": {\"a\": 5, \"e\": [1], \"$version\": 5}, \"reported\": {\"r\": 1, \"$version\": 4}}");
        assert_int_equal(t->desired_version, 5);
        assert_json_equal(t->desired, "{\"a\": 5, \"e\": [1]}");
        assert_int_equal(t->reported_version, 4);
        assert_json_equal(t->reported, "{\"r\": 1}");
        /* Answered once: the same answer again is unknown. */
        assert_null(t->late_fetch_rid);
        bus_message(m, topic, "dev", "{\"desired\": {\"$version\": 9}, \"reported\": {\"$version\": 9}}");
        assert_int_equal(t->desired_version, 5);

        /* Restarted offline: the cache is what a GET is answered from. */
        m = open_manager(f);
        t = manager_twin(m, "dev");
        assert_int_equal(t->desired_version, 5);
        assert_json_equal(t->desired, "{\"a\": 5, \"e\": [1]}");
        assert_int_equal(t->reported_version, 4);
        assert_json_equal(t->reported, "{\"r\": 1}");
        json_auto_t *view = twin_view(t);
        assert_json_equal(view, "{\"desired\": {\"a\": 5, \"e\": [1], \"$version\": 5},"
                                " \"reported\": {\"r\": 1, \"$version\": 4}}");
        /* The link and presence are not part of it: they are heard again. */
        assert_int_equal(t->link, BUS_LINK_UNKNOWN);
        assert_false(t->heard_presence);
}

/* ---- reported patches ---- */

static void test_reported_queue_across_restart(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        json_t *j;
        Twin *t;

        bus_message(m, BUS_TOPIC_LINK, "dev", "down");
        device_reported(m, "dev", "1", "{\"a\": 1, \"b\": {\"c\": 2}}");
        t = manager_twin(m, "dev");
        assert_int_equal(t->reported_version, 1);
        assert_int_equal(t->n_pending, 1);
        assert_int_equal(t->pending_bytes, strlen("{\"a\": 1, \"b\": {\"c\": 2}}"));

        /* Offline, the next patch merges into the queued one: the queue stays one entry, deletions kept. */
        device_reported(m, "dev", "2", "{\"b\": {\"c\": null}, \"d\": \"x\"}");
        assert_int_equal(t->reported_version, 2);
        assert_int_equal(t->n_pending, 1);
        assert_json_equal(t->reported, "{\"a\": 1, \"b\": {}, \"d\": \"x\"}");
        uint64_t bytes = t->pending_bytes;

        /* Refused patches change nothing: not JSON, a '$' name, not an object. */
        device_reported(m, "dev", "3", "{\"a\": ");
        device_reported(m, "dev", "4", "{\"$bad\": 1}");
        device_reported(m, "dev", "5", "[1]");
        assert_int_equal(t->reported_version, 2);
        assert_int_equal(t->n_pending, 1);
        assert_int_equal(t->pending_bytes, bytes);

        /* Restarted: the reported document, its version and the queue are as the device was told. */
        m = open_manager(f);
        j = twin_json(m, "dev");
        assert_int_equal(json_integer_value(json_object_get(j, "reported_version")), 2);
        assert_int_equal(json_integer_value(json_object_get(j, "pending")), 1);
        assert_int_equal(json_integer_value(json_object_get(j, "pending_bytes")), (json_int_t) bytes);
        assert_string_equal(json_string_value(json_object_get(j, "link")), "unknown");
        assert_json_equal(json_object_get(j, "reported"), "{\"a\": 1, \"b\": {}, \"d\": \"x\"}");
        json_t *queued = json_object_get(j, "pending_patches");
        assert_int_equal(json_array_size(queued), 1);
        assert_json_equal(json_object_get(json_array_get(queued, 0), "patch"),
                          "{\"a\": 1, \"b\": {\"c\": null}, \"d\": \"x\"}");
        json_decref(j);

        /* Versions handed out never go backwards after a restart: the next patch is version 3. */
        t = manager_twin(m, "dev");
        device_reported(m, "dev", "6", "{\"e\": true}");
        assert_int_equal(t->reported_version, 3);
        /* ... and it still merges into the entry queued before the restart. */
        assert_int_equal(t->n_pending, 1);
        json_auto_t *merged = twin_store_pending(m->kv, t);
        assert_json_equal(json_object_get(json_array_get(merged, 0), "patch"),
                          "{\"a\": 1, \"b\": {\"c\": null}, \"d\": \"x\", \"e\": true}");
}

static void test_reported_queue_cap(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        static const char first[] = "{\"k1\": \"0123456789\"}";
        Twin *t;

        /* The cap (storage.twin_queue_max_bytes) for this test: room for about two small patches. */
        m->config->twin_queue_max_bytes = 2 * strlen(first) + 4;
        bus_message(m, BUS_TOPIC_LINK, "dev", "down");
        device_reported(m, "dev", "1", first);
        t = manager_twin(m, "dev");
        assert_int_equal(t->n_pending, 1);
        assert_int_equal(t->reported_version, 1);

        /* A new key grows the merged patch past the cap: refused (429), and nothing changes, on disk neither. */
        device_reported(m, "dev", "2", "{\"k2\": \"0123456789\", \"k3\": \"0123456789\"}");
        assert_int_equal(t->n_pending, 1);
        assert_int_equal(t->reported_version, 1);
        assert_int_equal(t->pending_bytes, strlen(first));
        assert_json_equal(t->reported, first);

        /* The direct call says why: -EDQUOT, which the device hears as IoT Hub's 429. */
        json_t *reported = json_pack("{s:s}", "k2", "x");
        assert_non_null(reported);
        assert_int_equal(manager_queue_reported(m, t, reported, "{\"k2\": \"0123456789\", \"k3\": \"0123456789\"}",
                                                strlen("{\"k2\": \"0123456789\", \"k3\": \"0123456789\"}")),
                         -EDQUOT);
        assert_json_equal(t->reported, first);

        /* Rewriting the key already queued replaces it in the merged patch: accepted at the cap. */
        device_reported(m, "dev", "3", "{\"k1\": \"9876543210\"}");
        assert_int_equal(t->reported_version, 2);
        assert_int_equal(t->n_pending, 1);
        assert_int_equal(t->pending_bytes, strlen("{\"k1\":\"9876543210\"}"));
        assert_json_equal(t->reported, "{\"k1\": \"9876543210\"}");

        /* The cap is per identity: another device still has room. */
        device_reported(m, "dev2", "1", "{\"k2\": \"0123456789\", \"k3\": \"0123456789\"}");
        assert_int_equal(manager_twin(m, "dev2")->n_pending, 1);

        /* What was refused never reached the disk. */
        m = open_manager(f);
        t = manager_twin(m, "dev");
        assert_int_equal(t->reported_version, 2);
        assert_json_equal(t->reported, "{\"k1\": \"9876543210\"}");
        json_auto_t *queued = twin_store_pending(m->kv, t);
        assert_int_equal(json_array_size(queued), 1);
        assert_json_equal(json_object_get(json_array_get(queued, 0), "patch"), "{\"k1\": \"9876543210\"}");
}

/* ---- $edgeHub ---- */

static void test_edgehub_desired_goes_to_hub_store(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        _cleanup_free_ char *sock = NULL;
        Twin *eh;

        assert_true(asprintf(&sock, "%s/run/hub-store.sock", f->dir) > 0);
        uplink_answer = "{\"uplink\": \"up\", \"links_up\": 1, \"offline_since_ms\": null}";
        f->stand_in = test_serve_fork(sock, hub_store_handler);

        /* A new edge device's twin holds no deployment: nothing goes to hub-store, nothing is reported. */
        cloud_desired(m, "edge1/$edgeHub", 1, "{\"$version\": 1}");
        eh = manager_twin(m, "edge1/$edgeHub");
        assert_int_equal(m->applied_version, 1);
        assert_int_equal(eh->n_pending, 0);

        /* Applied by hub-store: its outcome is queued as $edgeHub's lastDesiredStatus, as edgeHub reports. */
        cloud_desired(m, "edge1/$edgeHub", 2,
                      "{\"schemaVersion\": \"1.1\", \"routes\": {\"r\": \"FROM /messages/* INTO $upstream\"},"
                      " \"$version\": 2}");
        assert_int_equal(m->applied_version, 2);
        assert_int_equal(eh->n_pending, 1);
        assert_json_equal(eh->reported, "{\"lastDesiredVersion\": 2, \"schemaVersion\": \"1.0\","
                                        " \"lastDesiredStatus\": {\"code\": 200, \"description\": \"\"}}");
        int64_t version = eh->reported_version;

        /* Restarted: the cached desired document is applied again, but what was reported is not said twice. */
        m = open_manager(f);
        manager_on_bus_connected(m->bus, m);
        eh = manager_twin(m, "edge1/$edgeHub");
        assert_int_equal(m->applied_version, 2);
        assert_int_equal(eh->reported_version, version);
        assert_int_equal(eh->n_pending, 1);

        /* Refused by hub-store: 400 with its reason, for that version. */
        cloud_desired(m, "edge1/$edgeHub", 3, "{\"routes\": {\"bad\": \"FROM\"}, \"$version\": 3}");
        assert_int_equal(m->applied_version, 3);
        assert_int_equal(eh->reported_version, version + 1);
        assert_json_equal(json_object_get(eh->reported, "lastDesiredStatus"),
                          "{\"code\": 400, \"description\": \"route 'bad': does not parse\"}");
        assert_int_equal(json_integer_value(json_object_get(eh->reported, "lastDesiredVersion")), 3);

        /* hub-store not answering: not applied, so the next fetch (or restart) tries again. */
        stop_stand_in(f);
        cloud_desired(m, "edge1/$edgeHub", 4, "{\"routes\": {\"r\": \"FROM /* INTO $upstream\"}, \"$version\": 4}");
        assert_int_equal(eh->desired_version, 4);
        assert_int_equal(m->applied_version, 3);
        assert_int_equal(eh->reported_version, version + 1);
}

/* ---- control ---- */

static void test_control_commands(void **state) {
        Fixture *f = *state;
        Manager *m = open_manager(f);
        json_t *j;
        char *error;
        json_int_t links_up = -1, pending = -1;
        int bus_connected = -1;

        bus_message(m, BUS_TOPIC_LINK, "dev1", "up");
        bus_message(m, BUS_TOPIC_LINK, "dev2", "down");
        device_reported(m, "dev2", "1", "{\"a\": 1}");
        device_reported(m, "dev3", "1", "{\"b\": 1}");
        assert_int_equal(control(m, "twins", NULL, &j, &error), 0);
        assert_int_equal(json_unpack(j, "{s:I, s:I, s:b}", "links_up", &links_up, "pending", &pending,
                                     "bus_connected", &bus_connected),
                         0);
        assert_int_equal(links_up, 1);
        /* dev3's link is unknown but dev1's is up: online, yet with no bus nothing went; both wait. */
        assert_int_equal(pending, 2);
        assert_false(bus_connected);
        assert_int_equal(json_array_size(json_object_get(j, "twins")), 3);
        json_decref(j);

        j = twin_json(m, "dev2");
        assert_string_equal(json_string_value(json_object_get(j, "identity")), "dev2");
        assert_string_equal(json_string_value(json_object_get(j, "link")), "down");
        assert_true(json_is_false(json_object_get(j, "in_flight")));
        assert_true(json_is_false(json_object_get(j, "connected")));
        assert_json_equal(json_object_get(j, "desired"), "{}");
        assert_json_equal(json_object_get(j, "reported"), "{\"a\": 1}");
        assert_int_equal(json_array_size(json_object_get(j, "pending_patches")), 1);
        json_decref(j);

        /* Presence shows as connected once heard. */
        bus_message(m, BUS_TOPIC_PRESENCE, "dev2", "connected");
        j = twin_json(m, "dev2");
        assert_true(json_is_true(json_object_get(j, "connected")));
        json_decref(j);
        bus_message(m, BUS_TOPIC_PRESENCE, "dev2", "disconnected");
        j = twin_json(m, "dev2");
        assert_true(json_is_false(json_object_get(j, "connected")));
        json_decref(j);

        assert_int_equal(control(m, "twin", NULL, &j, &error), -ENOENT);
        assert_string_equal(error, "an identity is required");
        free(error);
        assert_int_equal(control(m, "twin", "nobody", &j, &error), -ENOENT);
        assert_string_equal(error, "no twin for this identity");
        free(error);
        assert_int_equal(control(m, "sync", NULL, &j, &error), -EINVAL);
        assert_string_equal(error, "unknown command; known: twins, twin");
        free(error);

        /* Every command only reads: the read group may send any of them. */
        static const char *const commands[] = { "twins", "twin", "sync" };
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                _cleanup_(frame_builder_deinit) FrameBuilder b = FRAME_BUILDER_NULL;
                Frame req;

                frame_builder_init(&b, WIRE_CONTROL_REQUEST);
                frame_builder_add_string(&b, WIRE_COMMAND, commands[i]);
                assert_int_equal(frame_builder_finish(&b), 0);
                assert_int_equal(frame_parse(&req, b.buf + FRAME_HEADER_SIZE, b.len - FRAME_HEADER_SIZE), 0);
                assert_int_equal(manager_request_access(m, &req), PEER_READ);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_link_state_from_the_bus, setup, teardown),
                cmocka_unit_test_setup_teardown(test_online_rule, setup, teardown),
                cmocka_unit_test_setup_teardown(test_uplink_status_at_bus_connect, setup, teardown),
                cmocka_unit_test_setup_teardown(test_get_answered_from_the_cache_while_offline, setup, teardown),
                cmocka_unit_test_setup_teardown(test_desired_cache_across_restart, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reported_queue_across_restart, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reported_queue_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_edgehub_desired_goes_to_hub_store, setup, teardown),
                cmocka_unit_test_setup_teardown(test_control_commands, setup, teardown),
        };

        test_block_daemon_signals();
        log_set_max_level(LOG_CRIT);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
