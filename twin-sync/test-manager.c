/* Tests of twin-sync's core without a broker: link states heard on the bus, and the control table */
#include <errno.h>
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
#include "proto/test-daemon.h"
#include "proto/wire.h"
#include "twin-sync/manager.h"

/* A Manager with its store and a bus that never connects: what it would send upstream is dropped. */
static Manager *make_manager(const char *dir) {
        static const BusHandlers handlers = { .message = manager_on_bus_message };
        _cleanup_free_ char *broker = NULL;
        Config *config = test_config_new(dir);
        Manager *m = NULL;

        assert_int_equal(manager_new(&m, &config), 0);
        assert_int_equal(manager_open_store(m), 0);
        assert_true(asprintf(&broker, "%s/run/broker.sock", dir) > 0);
        assert_int_equal(bus_new(&m->bus, m->event, broker, "twin-sync", &handlers, m), 0);
        return m;
}

static void bus_message(Manager *m, const char *topic, const char *client, const char *payload) {
        BusMessage msg = { .topic = topic, .payload = payload, .len = strlen(payload), .client = client };
        manager_on_bus_message(m->bus, &msg, m);
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
        _cleanup_(manager_freep) Manager *m = make_manager(*state);
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
        _cleanup_(manager_freep) Manager *m = make_manager(*state);
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
                cmocka_unit_test_setup_teardown(test_link_state_from_the_bus, test_scratch_setup, test_scratch_teardown),
                cmocka_unit_test_setup_teardown(test_control_commands, test_scratch_setup, test_scratch_teardown),
        };

        test_block_daemon_signals();
        log_set_max_level(LOG_CRIT);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
