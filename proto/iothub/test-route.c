/* Unit tests: the route language (sources, conditions, sinks) and route tables */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/iothub/route.h"
#include "proto/util/cleanup.h"

static Route *parse_ok(const char *text) {
        Route *r = NULL;
        char *error = NULL;
        int k = route_parse(text, strlen(text), &r, &error);
        if (k < 0)
                fail_msg("'%s': %s", text, error ?: "(no message)");
        assert_null(error);
        return r;
}

/* Fails with -EINVAL and a message containing want (and "position N:" first). */
static void parse_fails(const char *text, const char *want) {
        Route *r = NULL;
        _cleanup_free_ char *error = NULL;
        int k = route_parse(text, strlen(text), &r, &error);
        if (k != -EINVAL || !error || !strstr(error, want))
                fail_msg("'%s': got %d '%s', want '%s'", text, k, error ?: "(null)", want);
        assert_null(r);
        assert_int_equal(strncmp(error, "position ", 9), 0);
}

/* Does route text match a message from identity with bag and output? */
static bool matches(const char *text, const char *identity, const char *bag, const char *output) {
        _cleanup_(route_freep) Route *r = parse_ok(text);
        RouteMessage m;
        assert_int_equal(route_message_init(&m, identity, bag, bag ? strlen(bag) : 0, output), 0);
        bool b = route_match(r, &m);
        route_message_deinit(&m);
        return b;
}

#define BAG "temp=21.5&alert=true&n=-2.5&seven=7&word=seven&quote=it%27s&empty=&%24.ct=application%2Fjson&%24.mid=m-1&%24.ce=utf-8"

/* WHERE cond on a telemetry message from dev1 with BAG. */
static bool cond(const char *c) {
        _cleanup_free_ char *text = NULL;
        assert_true(asprintf(&text, "FROM /messages/* WHERE %s INTO $upstream", c) > 0);
        return matches(text, "dev1", BAG, NULL);
}

static void test_sources(void **state) {
        static const struct {
                const char *source;
                bool telemetry, m1_o1, m1_o2, m1_none, m2_o1;
        } cases[] = {
                { "/*", true, true, true, true, true },
                { "/messages/*", true, true, true, true, true },
                { "/messages", true, true, true, true, true },
                { "/messages/events", true, false, false, false, false },
                { "/messages/events/*", true, false, false, false, false },
                { "/messages/modules/*", false, true, true, true, true },
                { "/messages/modules/m1/*", false, true, true, true, false },
                { "/messages/modules/M1/*", false, true, true, true, false }, /* edgeHub ignores case */
                { "/messages/modules/m1", false, true, true, true, false },
                { "/messages/modules/m1/outputs/*", false, true, true, false, false },
                { "/messages/modules/m1/outputs/o1", false, true, false, false, false },
                { "/messages/modules/m1/outputs/O1", false, true, false, false, false },
                { "/twinChangeNotifications", false, false, false, false, false },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *text = NULL;
                assert_true(asprintf(&text, "FROM %s INTO $upstream", cases[i].source) > 0);
                if (matches(text, "dev1", NULL, NULL) != cases[i].telemetry ||
                    matches(text, "dev1/m1", NULL, "o1") != cases[i].m1_o1 ||
                    matches(text, "dev1/m1", NULL, "o2") != cases[i].m1_o2 ||
                    matches(text, "dev1/m1", NULL, NULL) != cases[i].m1_none ||
                    matches(text, "dev1/m2", NULL, "o1") != cases[i].m2_o1)
                        fail_msg("source %s", cases[i].source);
        }

        /* The output name may come from the bag's $.on. */
        assert_true(matches("FROM /messages/modules/m1/outputs/o1 INTO $upstream", "dev1/m1", "%24.on=o1", NULL));
        _cleanup_(route_freep) Route *r = parse_ok("FROM /messages/modules/m1/outputs/o1 INTO $upstream");
        assert_int_equal(r->source.kind, ROUTE_SOURCE_MODULE_OUTPUT);
        assert_string_equal(r->source.module_id, "m1");
        assert_string_equal(r->source.output, "o1");
        assert_null(r->condition);
}

static void test_sinks(void **state) {
        Route *r;
        _cleanup_free_ char *s = NULL;
        (void) state;

        r = parse_ok("FROM /messages/* INTO $upstream");
        assert_int_equal(r->sink.kind, ROUTE_SINK_UPSTREAM);
        assert_int_equal(route_sink_to_string(&r->sink, &s), 0);
        assert_string_equal(s, "$upstream");
        route_free(r);
        free(TAKE_PTR(s));

        r = parse_ok("FROM /messages/* INTO $UPSTREAM");
        assert_int_equal(r->sink.kind, ROUTE_SINK_UPSTREAM);
        route_free(r);

        r = parse_ok("FROM /messages/* INTO BrokeredEndpoint(\"/modules/filter/inputs/in1\")");
        assert_int_equal(r->sink.kind, ROUTE_SINK_MODULE_INPUT);
        assert_string_equal(r->sink.module_id, "filter");
        assert_string_equal(r->sink.input, "in1");
        assert_int_equal(route_sink_to_string(&r->sink, &s), 0);
        assert_string_equal(s, "/modules/filter/inputs/in1");
        Route *r2 = parse_ok("from /messages/* into brokeredendpoint ( '/modules/filter/inputs/in1' )  ");
        assert_true(route_sink_equal(&r->sink, &r2->sink));
        route_free(r2);
        route_free(r);

        parse_fails("FROM /messages/* INTO", "position 22: expected $upstream or BrokeredEndpoint");
        parse_fails("FROM /messages/* INTO $downstream", "position 23: expected $upstream");
        parse_fails("FROM /messages/* INTO Endpoint(\"/modules/m/inputs/i\")", "position 23:");
        parse_fails("FROM /messages/* INTO BrokeredEndpoint", "position 39: expected '(' after BrokeredEndpoint");
        parse_fails("FROM /messages/* INTO BrokeredEndpoint(/modules/m/inputs/i)", "position 40: expected a quoted");
        parse_fails("FROM /messages/* INTO BrokeredEndpoint(\"/modules/m/inputs/i", "position 40: unterminated");
        parse_fails("FROM /messages/* INTO BrokeredEndpoint(\"/modules/m/outputs/i\")", "position 52: expected 'inputs/");
        parse_fails("FROM /messages/* INTO BrokeredEndpoint(\"/devices/m/inputs/i\")", "position 41: expected an endpoint");
        parse_fails("FROM /messages/* INTO BrokeredEndpoint(\"/modules/m/inputs/\")", "expected an input name");
        parse_fails("FROM /messages/* INTO BrokeredEndpoint(\"/modules/m/inputs/a/b\")", "expected an input name");
        parse_fails("FROM /messages/* INTO BrokeredEndpoint(\"/modules/m/inputs/a#\")", "expected an input name");
        parse_fails("FROM /messages/* INTO BrokeredEndpoint(\"/modules//inputs/i\")", "expected a module id");
        parse_fails("FROM /messages/* INTO BrokeredEndpoint(\"/modules/m/inputs/i\"", "expected ')'");
        parse_fails("FROM /messages/* INTO BrokeredEndpoint(\"/modules/m/inputs/i\\\"\")", "escapes are not allowed");
        parse_fails("FROM /messages/* INTO $upstream extra", "position 33: expected the end of the route, found 'extra'");
}

static void test_frame(void **state) {
        (void) state;

        assert_true(matches("from /messages/* where alert = 'true' into $upstream", "dev1", BAG, NULL));
        assert_true(matches("SELECT * FROM /messages/* WhErE alert = 'true' InTo $upstream", "dev1", BAG, NULL));
        assert_true(matches("  FROM\t/messages/*\nWHERE alert='true'INTO $upstream  ", "dev1", BAG, NULL));

        parse_fails("", "position 1: expected FROM, found end of route");
        parse_fails("FRM /messages/* INTO $upstream", "position 1: expected FROM, found 'FRM'");
        parse_fails("SELECT FROM /messages/* INTO $upstream", "position 8: expected '*' after SELECT");
        parse_fails("FROM messages INTO $upstream", "position 6: expected a source");
        parse_fails("FROM /messages/* TO $upstream", "position 18: expected WHERE or INTO, found 'TO'");
        parse_fails("FROM /foo/* INTO $upstream", "position 7: expected 'messages'");
        parse_fails("FROM /messages/x INTO $upstream", "position 16: expected 'events', 'modules'");
        parse_fails("FROM /messages/*/events INTO $upstream", "position 16: '*' may only end");
        parse_fails("FROM /messages//x INTO $upstream", "position 16: expected a path segment");
        parse_fails("FROM /messages/ INTO $upstream", "position 16: expected a path segment");
        parse_fails("FROM /messages/events/x INTO $upstream", "position 23: expected the end of the source");
        parse_fails("FROM /messages/modules/m1/inputs/x INTO $upstream", "position 27: expected 'outputs'");
        parse_fails("FROM /messages/modules/m{1}/* INTO $upstream", "position 24: expected a module id");
        parse_fails("FROM /messages/modules/m1/outputs/o1/x INTO $upstream", "position 38: expected the end");
        parse_fails("FROM /messages/* WHERE INTO $upstream", "position 24: expected a property, a literal or '('");
        parse_fails("FROM /messages/* WHERE a = 1 $upstream", "position 30: expected AND, OR or INTO, found '$upstream'");
        parse_fails("FROM /messages/* WHERE a = 1", "position 29: expected AND, OR or INTO, found end of route");

        static const char nul[] = "FROM /messages/*\0 INTO $upstream";
        Route *r = NULL;
        _cleanup_free_ char *error = NULL;
        assert_int_equal(route_parse(nul, sizeof(nul) - 1, &r, &error), -EINVAL);
        assert_non_null(strstr(error, "position 17: NUL byte"));
}

static void test_comparisons(void **state) {
        (void) state;

        /* strings */
        assert_true(cond("alert = 'true'"));
        assert_false(cond("alert = 'false'"));
        assert_true(cond("alert != 'false'"));
        assert_true(cond("alert <> 'false'"));
        assert_false(cond("alert <> 'true'"));
        assert_true(cond("word > 'apple'"));
        assert_true(cond("word >= 'seven'"));
        assert_true(cond("word <= 'seven'"));
        assert_false(cond("word < 'seven'"));
        assert_true(cond("'a' < 'b'"));
        assert_true(cond("empty = ''"));
        /* numbers: a property string that is wholly a number compares numerically */
        assert_true(cond("temp > 20"));
        assert_true(cond("temp >= 21.5"));
        assert_true(cond("temp <= 21.5"));
        assert_false(cond("temp < 21.5"));
        assert_true(cond("temp = 21.50"));
        assert_true(cond("temp != 3"));
        assert_true(cond("seven = 7"));
        assert_true(cond("7 = seven"));
        assert_true(cond("seven > 5"));
        assert_true(cond("seven < 1e1"));
        assert_true(cond("n < -2"));
        assert_true(cond("n = -2.5"));
        assert_true(cond("n > -.26e1"));
        assert_true(cond("0.5 = .5"));
        /* a string against a string stays a string comparison: '7' > '10' */
        assert_true(cond("seven > '10'"));
        assert_false(cond("seven > 10"));
        /* not a number: undefined, so neither the comparison nor its negation matches */
        assert_false(cond("word > 5"));
        assert_false(cond("NOT (word > 5)"));
        assert_false(cond("NOT (empty = 0)"));
        /* booleans */
        assert_true(cond("true"));
        assert_false(cond("false"));
        assert_true(cond("TRUE = true"));
        assert_true(cond("true != false"));
        assert_false(cond("NOT (true < false)")); /* no order on booleans: undefined */
        /* mixed types other than string/number are undefined */
        assert_false(cond("alert = true"));
        assert_false(cond("NOT (alert = true)"));
        assert_false(cond("NOT ('1' = true)"));
        /* a bare non-boolean is not true */
        assert_false(cond("alert"));
        assert_false(cond("'true'"));
}

static void test_logic(void **state) {
        (void) state;

        assert_true(cond("true AND true"));
        assert_false(cond("true AND false"));
        assert_true(cond("false OR true"));
        assert_false(cond("false OR false"));
        assert_true(cond("NOT false"));
        assert_false(cond("NOT true"));
        assert_true(cond("NOT NOT true"));
        assert_true(cond("alert = 'true' and temp > 20 or false"));

        /* NOT binds tighter than AND: (NOT false) AND false */
        assert_false(cond("NOT false AND false"));
        assert_true(cond("NOT (false AND false)"));
        /* AND binds tighter than OR: true OR (true AND false) */
        assert_true(cond("true OR true AND false"));
        assert_false(cond("(true OR true) AND false"));
        assert_true(cond("false AND false OR true"));
        assert_false(cond("false AND (false OR true)"));
        /* NOT applies to the comparison, not its left operand */
        assert_true(cond("NOT temp < 10"));
        assert_true(cond("((((temp > 20))))"));
}

static void test_undefined(void **state) {
        (void) state;

        assert_false(cond("missing = 1"));
        assert_false(cond("missing != 1"));
        assert_false(cond("NOT (missing = 1)"));            /* NOT undefined = undefined */
        assert_true(cond("NOT (missing = 1 AND false)"));    /* undefined AND false = false */
        assert_false(cond("missing = 1 AND true"));
        assert_false(cond("NOT (missing = 1 AND true)"));   /* undefined AND true = undefined */
        assert_true(cond("missing = 1 OR true"));            /* undefined OR true = true */
        assert_false(cond("NOT (missing = 1 OR false)"));   /* undefined OR false = undefined */
        assert_false(cond("missing = missing"));
        assert_true(cond("IS_DEFINED(alert)"));
        assert_true(cond("IS_DEFINED(empty)"));
        assert_false(cond("IS_DEFINED(missing)"));
        assert_true(cond("NOT IS_DEFINED(missing)"));
        assert_true(cond("is_defined ( temp ) AND NOT is_defined(missing)"));
        assert_false(cond("$enqueuedTime = 1 OR NOT true"));  /* unknown system property: undefined */
        assert_false(cond("IS_DEFINED($enqueuedTime)"));
        /* names are case-sensitive */
        assert_false(cond("IS_DEFINED(Alert)"));
}

static void test_strings(void **state) {
        (void) state;

        assert_true(cond("quote = 'it''s'"));
        assert_true(cond("quote = 'it\\'s'"));
        assert_true(cond("quote = \"it's\""));
        assert_true(cond("quote = \"it\\u0027s\""));
        assert_true(cond("'a\"\"b' = 'a\"\"b'"));
        assert_true(cond("\"a\"\"b\" = 'a\"b'"));
        assert_true(cond("'\\\\' = \"\\\\\""));
        assert_true(cond("'\\u00e9' = '\xc3\xa9'"));
        assert_true(cond("'\\ud83d\\ude00' = '\xf0\x9f\x98\x80'"));
        assert_true(cond("'INTO' = 'INTO'"));
        assert_true(matches("FROM /messages/* WHERE k = 'a b' INTO $upstream", "d", "k=a%20b", NULL));

        parse_fails("FROM /messages/* WHERE a = 'x INTO $upstream", "position 28: unterminated string");
        parse_fails("FROM /messages/* WHERE a = 'x\\q' INTO $upstream", "position 30: invalid escape");
        parse_fails("FROM /messages/* WHERE a = '\\u12' INTO $upstream", "position 29: invalid \\u escape");
        parse_fails("FROM /messages/* WHERE a = '\\u0000' INTO $upstream", "position 29: \\u0000 is not allowed");
        parse_fails("FROM /messages/* WHERE a = '\\ud83d' INTO $upstream", "position 29: unpaired surrogate");
}

static void test_system_properties(void **state) {
        (void) state;

        assert_true(cond("$contentType = 'application/json'"));
        assert_true(cond("$contentEncoding = 'utf-8'"));
        assert_true(cond("$messageId = 'm-1'"));
        assert_false(cond("IS_DEFINED($correlationId)"));
        assert_true(cond("$connectionDeviceId = 'dev1'"));
        assert_false(cond("IS_DEFINED($connectionModuleId)"));
        assert_false(cond("IS_DEFINED($outputName)"));
        assert_false(cond("IS_DEFINED($contenttype)")); /* case-sensitive, like IoT Hub */

        assert_true(matches("FROM /messages/* WHERE $connectionModuleId = 'm1' AND $outputName = 'o1' "
                            "AND $connectionDeviceId = 'dev1' INTO $upstream",
                            "dev1/m1", NULL, "o1"));
        assert_true(matches("FROM /messages/* WHERE $correlationId = 'c' AND $userId = 'u' AND $to = 't' "
                            "INTO $upstream",
                            "d", "%24.cid=c&%24.uid=u&%24.to=t", NULL));
        /* Device telemetry only, the edgeHub way. */
        static const char only_devices[] = "FROM /messages/* WHERE NOT IS_DEFINED($connectionModuleId) INTO $upstream";
        assert_true(matches(only_devices, "dev1", NULL, NULL));
        assert_false(matches(only_devices, "dev1/m1", NULL, "o1"));
        /* The bag cannot claim another sender. */
        assert_false(matches("FROM /messages/* WHERE $connectionDeviceId = 'other' INTO $upstream", "dev1",
                             "%24.cdid=other", NULL));
        assert_true(matches(only_devices, "dev1", "%24.cmid=m9", NULL));
        /* $name is the system property even when an application property is spelt "$name". */
        assert_false(matches("FROM /messages/* WHERE $messageId = 'x' INTO $upstream", "d", "%24messageId=x", NULL));
        /* ... and application properties never reach "$." keys. */
        assert_false(matches("FROM /messages/* WHERE IS_DEFINED(ct) INTO $upstream", "d", "%24.ct=x", NULL));

        parse_fails("FROM /messages/* WHERE $body.temp > 5 INTO $upstream", "position 24: $body queries are not supported");
        parse_fails("FROM /messages/* WHERE $ = 5 INTO $upstream", "position 24: expected a system property name");
}

static void test_condition_errors(void **state) {
        (void) state;

        parse_fails("FROM /messages/* WHERE a = INTO $upstream", "position 28: expected a property, a literal or '(', found 'INTO'");
        parse_fails("FROM /messages/* WHERE (a = 1 INTO $upstream", "position 31: expected AND, OR or ')', found 'INTO'");
        parse_fails("FROM /messages/* WHERE a = 1) INTO $upstream", "position 29: expected AND, OR or INTO, found ')'");
        parse_fails("FROM /messages/* WHERE a = 1 = 2 INTO $upstream", "position 30: comparisons do not chain");
        parse_fails("FROM /messages/* WHERE a == 1 INTO $upstream", "position 27: expected a property, a literal or '(', found '='");
        parse_fails("FROM /messages/* WHERE a = 1 AND INTO $upstream", "position 34: expected a property");
        parse_fails("FROM /messages/* WHERE NOT INTO $upstream", "position 28: expected a property");
        parse_fails("FROM /messages/* WHERE a = 12abc INTO $upstream", "position 28: invalid number");
        parse_fails("FROM /messages/* WHERE a = 1. INTO $upstream", "position 28: invalid number");
        parse_fails("FROM /messages/* WHERE a # 1 INTO $upstream", "position 26: unexpected character '#'");
        parse_fails("FROM /messages/* WHERE a ! 1 INTO $upstream", "position 26: unexpected character '!'");
        parse_fails("FROM /messages/* WHERE upper(a) = 'X' INTO $upstream", "position 24: unsupported function 'upper'");
        parse_fails("FROM /messages/* WHERE IS_DEFINED a INTO $upstream", "position 35: expected '(' after IS_DEFINED");
        parse_fails("FROM /messages/* WHERE IS_DEFINED('a') INTO $upstream", "position 35: expected a property");
        parse_fails("FROM /messages/* WHERE IS_DEFINED(a INTO $upstream", "position 37: expected ')'");
        parse_fails("FROM /messages/* WHERE () INTO $upstream", "position 25: expected a property");
        parse_fails("FROM /messages/* WHERE where = 1 INTO $upstream", "position 24: expected a property");
}

static char *repeat(const char *prefix, const char *unit, size_t n, const char *suffix) {
        size_t len = strlen(prefix) + strlen(unit) * n + strlen(suffix) + 1;
        char *s = malloc(len), *p = s;
        assert_non_null(s);
        p = stpcpy(p, prefix);
        for (size_t i = 0; i < n; i++)
                p = stpcpy(p, unit);
        strcpy(p, suffix);
        return s;
}

static void test_limits(void **state) {
        Route *r = NULL;
        (void) state;

        /* 32 levels of parentheses are fine, 33 are not. */
        _cleanup_free_ char *open32 = repeat("FROM /messages/* WHERE ", "(", 32, "true");
        _cleanup_free_ char *ok = repeat(open32, ")", 32, " INTO $upstream");
        r = parse_ok(ok);
        RouteMessage m = ROUTE_MESSAGE_NULL;
        assert_true(route_match(r, &m));
        route_free(r);
        _cleanup_free_ char *open33 = repeat("FROM /messages/* WHERE ", "(", 33, "true");
        _cleanup_free_ char *deep = repeat(open33, ")", 33, " INTO $upstream");
        parse_fails(deep, "position 56: nested deeper than 32 levels");
        _cleanup_free_ char *nots = repeat("FROM /messages/* WHERE ", "NOT ", 33, "true INTO $upstream");
        parse_fails(nots, "nested deeper than 32 levels");
        _cleanup_free_ char *defs = repeat("FROM /messages/* WHERE ", "(", 32, "IS_DEFINED(a) INTO $upstream");
        parse_fails(defs, "nested deeper than 32 levels");

        /* Long AND/OR chains are flat: no depth, only the length limit. */
        _cleanup_free_ char *chain = repeat("FROM /messages/* WHERE true", " AND true", 450, " INTO $upstream");
        r = parse_ok(chain);
        assert_true(route_match(r, &m));
        route_free(r);
        _cleanup_free_ char *long_chain = repeat("FROM /messages/* WHERE true", " AND true", 460, " INTO $upstream");
        parse_fails(long_chain, "condition longer than 4096 bytes");
        /* A long string literal counts too. */
        _cleanup_free_ char *long_string = repeat("FROM /messages/* WHERE a = '", "x", 5000, "' INTO $upstream");
        parse_fails(long_string, "position 28: condition longer than 4096 bytes");
        _cleanup_free_ char *huge = repeat("FROM /messages/* WHERE a = '", "x", 9000, "' INTO $upstream");
        parse_fails(huge, "position 8193: route longer than 8192 bytes");
}

static void test_message(void **state) {
        RouteMessage m;
        (void) state;

        assert_int_equal(route_message_init(&m, "dev1/m1", "a=1&%24.ct=application%2Fjson&%24.on=out", 40, NULL), 0);
        assert_string_equal(m.device_id, "dev1");
        assert_string_equal(m.module_id, "m1");
        assert_string_equal(m.output_name, "out");
        assert_string_equal(route_message_get_property(&m, "a"), "1");
        assert_null(route_message_get_property(&m, "$.ct"));
        assert_string_equal(route_message_get_system(&m, ROUTE_SYS_CONTENT_TYPE), "application/json");
        assert_string_equal(route_message_get_system(&m, ROUTE_SYS_CONNECTION_MODULE_ID), "m1");
        route_message_deinit(&m);

        assert_int_equal(route_message_init(&m, "bad id", NULL, 0, NULL), -EINVAL);
        assert_int_equal(route_message_init(&m, "d", "%zz", 3, NULL), -EINVAL);
        assert_int_equal(route_system_property_from_string("outputName", 10), ROUTE_SYS_OUTPUT_NAME);
        assert_int_equal(route_system_property_from_string("nope", 4), _ROUTE_SYS_INVALID);
        assert_string_equal(route_system_property_bag_key(ROUTE_SYS_MESSAGE_ID), "$.mid");
}

static void test_table(void **state) {
        RouteSpecs specs = ROUTE_SPECS_NULL;
        _cleanup_(route_table_freep) RouteTable *t = NULL;
        _cleanup_free_ char *errors = NULL;
        (void) state;

        assert_int_equal(route_specs_add(&specs, "all", "FROM /messages/* INTO $upstream", 0, 0), 0);
        assert_int_equal(route_specs_add(&specs, "bad", "FROM /messages/* INTO nowhere", 0, 0), 0);
        assert_int_equal(route_specs_add(&specs, "alerts", "FROM /messages/* WHERE alert = 'true' INTO $upstream", 0, 0), 0);
        assert_int_equal(route_specs_add(&specs, "urgent", "FROM /messages/* WHERE alert = 'true' INTO $upstream", 1, 60), 0);
        assert_int_equal(route_specs_add(&specs, "filter", "FROM /messages/modules/s/outputs/o INTO BrokeredEndpoint(\"/modules/f/inputs/i\")", 3, 0), 0);
        assert_int_equal(route_specs_add(&specs, "worse", "FROM /nowhere INTO $upstream", 0, 0), 0);
        assert_int_equal(route_specs_add(&specs, "all", "FROM /* INTO $upstream", 0, 0), -EEXIST);
        assert_int_equal(route_specs_add(&specs, "p", "FROM /* INTO $upstream", 10, 0), -EINVAL);
        assert_int_equal(route_specs_add(&specs, "", "FROM /* INTO $upstream", 0, 0), -EINVAL);
        assert_int_equal(route_specs_add(&specs, "a\nb", "FROM /* INTO $upstream", 0, 0), -EINVAL);

        assert_int_equal(route_table_new(&specs, &t, &errors), 2);
        assert_string_equal(errors, "route 'bad': position 23: expected $upstream or BrokeredEndpoint(\"/modules/{module}/inputs/{input}\"), found 'nowhere'\n"
                                    "route 'worse': position 7: expected 'messages', 'twinChangeNotifications' or '*', found 'nowhere'");
        assert_int_equal(t->n, 4);
        assert_string_equal(t->entries[0].name, "all");
        assert_string_equal(t->entries[2].name, "urgent");
        assert_int_equal(t->entries[2].priority, 1);
        assert_int_equal(t->entries[2].time_to_live_secs, 60);

        const RouteTableEntry *hits[8];
        RouteMessage m;
        assert_int_equal(route_message_init(&m, "d", "alert=true", 10, NULL), 0);
        /* "alerts" duplicates "all" (same sink, priority, TTL); "urgent" differs in priority. */
        assert_int_equal(route_table_match(t, &m, hits, ELEMENTSOF(hits)), 2);
        assert_string_equal(hits[0]->name, "all");
        assert_string_equal(hits[1]->name, "urgent");
        assert_int_equal(route_table_match(t, &m, hits, 1), 1);
        route_message_deinit(&m);

        assert_int_equal(route_message_init(&m, "d/s", NULL, 0, "o"), 0);
        assert_int_equal(route_table_match(t, &m, hits, ELEMENTSOF(hits)), 2);
        assert_string_equal(hits[1]->name, "filter");
        assert_int_equal(hits[1]->route->sink.kind, ROUTE_SINK_MODULE_INPUT);
        route_message_deinit(&m);

        RouteSpecs copy = ROUTE_SPECS_NULL;
        assert_int_equal(route_specs_copy(&specs, &copy), 0);
        assert_int_equal(copy.n, specs.n);
        assert_non_null(route_specs_find(&copy, "filter"));
        route_specs_deinit(&copy);
        route_specs_deinit(&specs);

        /* An empty list is an empty table. */
        RouteTable *empty = NULL;
        assert_int_equal(route_table_new(&specs, &empty, NULL), 0);
        assert_int_equal(empty->n, 0);
        route_table_free(empty);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sources),
                cmocka_unit_test(test_sinks),
                cmocka_unit_test(test_frame),
                cmocka_unit_test(test_comparisons),
                cmocka_unit_test(test_logic),
                cmocka_unit_test(test_undefined),
                cmocka_unit_test(test_strings),
                cmocka_unit_test(test_system_properties),
                cmocka_unit_test(test_condition_errors),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_message),
                cmocka_unit_test(test_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
