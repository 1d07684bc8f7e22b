/* Tests of twin-sync's core without a broker: link states heard on the bus, and the control table */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "proto/cleanup.h"
#include "proto/client.h"
#include "proto/log.h"
#include "proto/wire.h"
#include "twin-sync/manager.h"

typedef struct Fixture {
        char dir[64];
} Fixture;

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        strcpy(f->dir, "/tmp/test-twin-sync-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;

        (void) nftw(f->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

/* A Manager with its store and a bus that never connects: what it would send upstream is dropped. */
static Manager *make_manager(Fixture *f) {
        static const BusHandlers handlers = { .message = manager_on_bus_message };
        _cleanup_free_ char *yaml = NULL, *error = NULL, *warnings = NULL, *broker = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        Manager *m = NULL;
        FILE *in;

        assert_true(asprintf(&yaml,
                             "edge:\n"
                             "  device_id: edge1\n"
                             "  hub_hostname: hub.example\n"
                             "  edgehub_key: AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
                             "listeners:\n"
                             "  tls:\n"
                             "    port: 0\n"
                             "storage:\n"
                             "  dir: %s/state\n"
                             "runtime_dir: %s/run\n",
                             f->dir, f->dir) > 0);
        in = fmemopen(yaml, strlen(yaml), "r");
        assert_non_null(in);
        assert_int_equal(config_parse(in, "test.yaml", &config, &error, &warnings), 0);
        fclose(in);
        assert_int_equal(manager_new(&m, &config), 0);
        assert_int_equal(manager_open_store(m), 0);
        assert_true(asprintf(&broker, "%s/run/broker.sock", f->dir) > 0);
        assert_int_equal(bus_new(&m->bus, m->event, broker, "twin-sync", &handlers, m), 0);
        return m;
}

static void bus_message(Manager *m, const char *topic, const char *client, const char *payload) {
        BusMessage msg = { .topic = topic, .payload = payload, .len = strlen(payload), .client = client };
        manager_on_bus_message(m->bus, &msg, m);
}

/* A control command's status, and its JSON (parsed) or error text. */
static int control(Manager *m, const char *command, const char *argument, json_t **ret_json, char **ret_error) {
        FrameBuilder req = FRAME_BUILDER_NULL, out = FRAME_BUILDER_NULL;
        _cleanup_free_ char *text = NULL;
        Frame request, reply;
        int status;

        frame_builder_init(&req, WIRE_CONTROL_REQUEST);
        frame_builder_add_string(&req, WIRE_COMMAND, command);
        if (argument)
                frame_builder_add_string(&req, WIRE_ARGUMENT, argument);
        assert_int_equal(frame_builder_finish(&req), 0);
        assert_int_equal(frame_parse(&request, req.buf + FRAME_HEADER_SIZE, req.len - FRAME_HEADER_SIZE), 0);
        assert_int_equal(manager_handle_request(m, &request, &out), 0);
        assert_int_equal(frame_builder_finish(&out), 0);
        assert_int_equal(frame_parse(&reply, out.buf + FRAME_HEADER_SIZE, out.len - FRAME_HEADER_SIZE), 0);
        assert_int_equal(reply.type, WIRE_CONTROL_REPLY);
        status = wire_reply_status(&reply);
        *ret_json = NULL;
        *ret_error = NULL;
        if (status == 0) {
                assert_int_equal(frame_get_string(&reply, WIRE_JSON, &text), 0);
                *ret_json = json_loads(text, 0, NULL);
                assert_non_null(*ret_json);
        } else
                assert_int_equal(frame_get_string(&reply, WIRE_ERROR, ret_error), 0);
        frame_builder_deinit(&req);
        frame_builder_deinit(&out);
        return status;
}

/* The twin's "link" as hubctl shows it. */
static char *link_of(Manager *m, const char *identity) {
        json_t *j;
        char *error = NULL, *link = NULL;
        const char *s = NULL;

        assert_int_equal(control(m, "twin", identity, &j, &error), 0);
        assert_int_equal(json_unpack(j, "{s:s}", "link", &s), 0);
        link = strdup(s);
        json_decref(j);
        return link;
}

static void test_link_state_from_the_bus(void **state) {
        Fixture *f = *state;
        _cleanup_(manager_freep) Manager *m = make_manager(f);
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

static void test_control_commands(void **state) {
        Fixture *f = *state;
        _cleanup_(manager_freep) Manager *m = make_manager(f);
        json_t *j;
        char *error;
        json_int_t links_up = -1;
        int bus_connected = -1;

        bus_message(m, BUS_TOPIC_LINK, "dev1", "up");
        assert_int_equal(control(m, "twins", NULL, &j, &error), 0);
        assert_int_equal(json_unpack(j, "{s:I, s:b}", "links_up", &links_up, "bus_connected", &bus_connected), 0);
        assert_int_equal(links_up, 1);
        assert_false(bus_connected);
        assert_int_equal(json_array_size(json_object_get(j, "twins")), 1);
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
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_link_state_from_the_bus, setup, teardown),
                cmocka_unit_test_setup_teardown(test_control_commands, setup, teardown),
        };
        sigset_t mask;

        /* manager_new() wants them blocked, as main() does. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        log_set_max_level(LOG_CRIT);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
