/* edgeHub routes: FROM <source> [WHERE <condition>] INTO <sink>, and tables of them */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/iothub/iot-identity.h"
#include "proto/iothub/route.h"
#include "proto/util/cleanup.h"
#include "proto/util/shown.h"

/*
 * The route's frame (keywords, source path, sink) is scanned here; the
 * condition has its own lexer and parser (route-condition.c), which stops at
 * the first token that cannot continue it, where INTO must follow.
 */

#define SPAN_SHOWN_MAX 32u
#define SOURCE_SEGMENTS_MAX 6u

typedef struct RouteParser {
        const char *s;
        size_t len;
        size_t pos;
        char *error;
} RouteParser;

typedef struct Span {
        size_t start, end;
} Span;

static void describe(const RouteParser *p, Span sp, char out[static SPAN_SHOWN_MAX + 8]) {
        shown_span(p->s, p->len, sp.start, sp.end, SPAN_SHOWN_MAX, "end of route", out);
}

static int fail(RouteParser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(RouteParser *p, size_t at, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        int r = fail_at_position(&p->error, at, fmt, ap);
        va_end(ap);
        return r;
}

/* "expected X, found 'Y'" with Y the span (or what starts at sp.start). */
static int fail_expected(RouteParser *p, Span sp, const char *what) {
        char found[SPAN_SHOWN_MAX + 8];
        describe(p, sp, found);
        return fail(p, sp.start, "expected %s, found %s", what, found);
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void skip_space(RouteParser *p) {
        while (p->pos < p->len && is_space(p->s[p->pos]))
                p->pos++;
}

/* The run of non-blanks at pos (what an error shows as "found"). */
static Span peek_run(const RouteParser *p) {
        Span sp = { p->pos, p->pos };
        while (sp.end < p->len && !is_space(p->s[sp.end]))
                sp.end++;
        return sp;
}

/* A keyword-like word: letters and '_'. */
static Span take_word(RouteParser *p) {
        Span sp = { p->pos, p->pos };
        while (sp.end < p->len && ((p->s[sp.end] >= 'A' && p->s[sp.end] <= 'Z') ||
                                    (p->s[sp.end] >= 'a' && p->s[sp.end] <= 'z') || p->s[sp.end] == '_'))
                sp.end++;
        p->pos = sp.end;
        return sp;
}

static bool span_is(const RouteParser *p, Span sp, const char *word) {
        size_t n = sp.end - sp.start;
        return strlen(word) == n && strncasecmp(p->s + sp.start, word, n) == 0;
}

/* Output and input names become MQTT topic levels: no '/', wildcards or control bytes. */
static bool name_part_is_valid(const char *s, size_t n) {
        if (n == 0 || n > ROUTE_NAME_PART_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] <= 0x20 || s[i] == 0x7f || s[i] == '/' || s[i] == '#' || s[i] == '+' ||
                    s[i] == '"' || s[i] == '\'')
                        return false;
        return true;
}

static int copy_module_id(RouteParser *p, Span sp, char **ret) {
        _cleanup_free_ char *id = strndup(p->s + sp.start, sp.end - sp.start);
        if (!id)
                return -ENOMEM;
        if (!iot_id_is_valid(id) || strcmp(id, "*") == 0)
                return fail_expected(p, sp, "a module id");
        *ret = TAKE_PTR(id);
        return 0;
}

static int copy_name_part(RouteParser *p, Span sp, const char *what, char **ret) {
        if (!name_part_is_valid(p->s + sp.start, sp.end - sp.start) ||
            (sp.end - sp.start == 1 && p->s[sp.start] == '*'))
                return fail_expected(p, sp, what);
        *ret = strndup(p->s + sp.start, sp.end - sp.start);
        return *ret ? 0 : -ENOMEM;
}

/* ---- source ---- */

static void route_source_deinit(RouteSource *s) {
        free(s->module_id);
        free(s->output);
        *s = (RouteSource){ .kind = _ROUTE_SOURCE_KIND_INVALID };
}

static int parse_source(RouteParser *p, RouteSource *ret) {
        Span seg[SOURCE_SEGMENTS_MAX + 1];
        size_t n = 0;
        int r;

        if (p->pos >= p->len || p->s[p->pos] != '/')
                return fail_expected(p, peek_run(p), "a source ('/messages/...')");
        Span path = peek_run(p);
        p->pos = path.end;

        for (size_t i = path.start + 1;;) {
                size_t j = i;
                while (j < path.end && p->s[j] != '/')
                        j++;
                if (n == ELEMENTSOF(seg))
                        return fail_expected(p, (Span){ i, j }, "the end of the source");
                seg[n++] = (Span){ i, j };
                if (j == i)
                        return fail(p, i, "expected a path segment in the source");
                if (j == path.end)
                        break;
                i = j + 1;
        }

        /* '*' may only end the path: sources are prefixes. */
        bool star = span_is(p, seg[n - 1], "*");
        for (size_t i = 0; i + 1 < n; i++)
                if (span_is(p, seg[i], "*"))
                        return fail(p, seg[i].start, "'*' may only end a source path");
        if (star)
                n--;

        _cleanup_(route_source_deinit) RouteSource s = { .kind = _ROUTE_SOURCE_KIND_INVALID };
        if (n == 0)
                s.kind = ROUTE_SOURCE_ALL;
        else if (span_is(p, seg[0], "twinChangeNotifications") && n == 1 && !star)
                s.kind = ROUTE_SOURCE_TWIN_CHANGES;
        else if (!span_is(p, seg[0], "messages"))
                return fail_expected(p, seg[0], "'messages', 'twinChangeNotifications' or '*'");
        else if (n == 1)
                s.kind = ROUTE_SOURCE_MESSAGES;
        else if (span_is(p, seg[1], "events")) {
                if (n > 2)
                        return fail_expected(p, seg[2], "the end of the source (or '*')");
                s.kind = ROUTE_SOURCE_TELEMETRY;
        } else if (!span_is(p, seg[1], "modules"))
                return fail_expected(p, seg[1], "'events', 'modules' or '*'");
        else if (n == 2)
                s.kind = ROUTE_SOURCE_MODULES;
        else {
                r = copy_module_id(p, seg[2], &s.module_id);
                if (r < 0)
                        return r;
                if (n == 3)
                        s.kind = ROUTE_SOURCE_MODULE;
                else if (!span_is(p, seg[3], "outputs"))
                        return fail_expected(p, seg[3], "'outputs' or '*'");
                else if (n == 4)
                        s.kind = ROUTE_SOURCE_MODULE_OUTPUTS;
                else if (n == 5) {
                        r = copy_name_part(p, seg[4], "an output name", &s.output);
                        if (r < 0)
                                return r;
                        s.kind = ROUTE_SOURCE_MODULE_OUTPUT;
                } else
                        return fail_expected(p, seg[5], "the end of the source");
        }

        *ret = s;
        s = (RouteSource){};
        return 0;
}

/* ---- sink ---- */

static void route_sink_deinit(RouteSink *s) {
        free(s->module_id);
        free(s->input);
        *s = (RouteSink){ .kind = _ROUTE_SINK_KIND_INVALID };
}

#define SINK_EXPECTED "$upstream or BrokeredEndpoint(\"/modules/{module}/inputs/{input}\")"

/* "/modules/{m}/inputs/{i}" at s[sp]: an endpoint inside BrokeredEndpoint("..."). */
static int parse_endpoint(RouteParser *p, Span sp, RouteSink *s) {
        static const char modules[] = "/modules/", inputs[] = "inputs/";
        size_t i = sp.start;
        int r;

        if (sp.end - i < strlen(modules) || strncasecmp(p->s + i, modules, strlen(modules)) != 0)
                return fail_expected(p, (Span){ i, sp.end }, "an endpoint \"/modules/{module}/inputs/{input}\"");
        i += strlen(modules);
        size_t j = i;
        while (j < sp.end && p->s[j] != '/')
                j++;
        r = copy_module_id(p, (Span){ i, j }, &s->module_id);
        if (r < 0)
                return r;
        i = j < sp.end ? j + 1 : j;
        if (j >= sp.end || sp.end - i < strlen(inputs) || strncasecmp(p->s + i, inputs, strlen(inputs)) != 0)
                return fail_expected(p, (Span){ i, sp.end }, "'inputs/{input}'");
        i += strlen(inputs);
        r = copy_name_part(p, (Span){ i, sp.end }, "an input name", &s->input);
        if (r < 0)
                return r;
        s->kind = ROUTE_SINK_MODULE_INPUT;
        return 0;
}

static int parse_sink(RouteParser *p, RouteSink *ret) {
        _cleanup_(route_sink_deinit) RouteSink s = { .kind = _ROUTE_SINK_KIND_INVALID };
        int r;

        if (p->pos < p->len && p->s[p->pos] == '$') {
                Span w = peek_run(p);
                if (!span_is(p, w, "$upstream"))
                        return fail_expected(p, w, SINK_EXPECTED);
                p->pos = w.end;
                s.kind = ROUTE_SINK_UPSTREAM;
        } else {
                Span w = take_word(p);
                if (!span_is(p, w, "BrokeredEndpoint"))
                        return fail_expected(p, w.end > w.start ? w : peek_run(p), SINK_EXPECTED);
                skip_space(p);
                if (p->pos >= p->len || p->s[p->pos] != '(')
                        return fail_expected(p, peek_run(p), "'(' after BrokeredEndpoint");
                p->pos++;
                skip_space(p);
                if (p->pos >= p->len || (p->s[p->pos] != '"' && p->s[p->pos] != '\''))
                        return fail_expected(p, peek_run(p), "a quoted endpoint \"/modules/{module}/inputs/{input}\"");
                char quote = p->s[p->pos];
                size_t open = p->pos++;
                size_t close = p->pos;
                while (close < p->len && p->s[close] != quote) {
                        if (p->s[close] == '\\')
                                return fail(p, close, "escapes are not allowed in an endpoint");
                        close++;
                }
                if (close >= p->len)
                        return fail(p, open, "unterminated string");
                r = parse_endpoint(p, (Span){ open + 1, close }, &s);
                if (r < 0)
                        return r;
                p->pos = close + 1;
                skip_space(p);
                if (p->pos >= p->len || p->s[p->pos] != ')')
                        return fail_expected(p, peek_run(p), "')'");
                p->pos++;
        }

        *ret = s;
        s = (RouteSink){};
        return 0;
}

/* ---- route ---- */

Route *route_free(Route *r) {
        if (!r)
                return NULL;
        route_sink_deinit(&r->sink);
        route_condition_free(r->condition);
        route_source_deinit(&r->source);
        free(r->text);
        free(r);
        return NULL;
}

static int parse_frame(RouteParser *p, Route *route) {
        Span w;
        int r;

        skip_space(p);
        w = take_word(p);
        if (span_is(p, w, "SELECT")) {
                skip_space(p);
                if (p->pos >= p->len || p->s[p->pos] != '*')
                        return fail_expected(p, peek_run(p), "'*' after SELECT");
                p->pos++;
                skip_space(p);
                w = take_word(p);
        }
        if (!span_is(p, w, "FROM"))
                return fail_expected(p, w.end > w.start ? w : peek_run(p), "FROM");

        skip_space(p);
        r = parse_source(p, &route->source);
        if (r < 0)
                return r;

        skip_space(p);
        w = take_word(p);
        if (span_is(p, w, "WHERE")) {
                size_t end;
                r = route_condition_parse(p->s, p->len, p->pos, &route->condition, &end, &p->error);
                if (r < 0)
                        return r;
                p->pos = end;
                w = take_word(p);
                if (!span_is(p, w, "INTO"))
                        return fail_expected(p, w.end > w.start ? w : peek_run(p), "AND, OR or INTO");
        } else if (!span_is(p, w, "INTO"))
                return fail_expected(p, w.end > w.start ? w : peek_run(p), "WHERE or INTO");

        skip_space(p);
        r = parse_sink(p, &route->sink);
        if (r < 0)
                return r;

        skip_space(p);
        if (p->pos < p->len)
                return fail_expected(p, peek_run(p), "the end of the route");
        return 0;
}

int route_parse(const char *text, size_t len, Route **ret, char **ret_error) {
        _cleanup_(route_freep) Route *route = NULL;
        RouteParser p = { .s = text, .len = len };
        int r;

        if ((!text && len > 0) || !ret)
                return -EINVAL;

        const char *nul = len > 0 ? memchr(text, 0, len) : NULL;
        if (len > ROUTE_TEXT_MAX)
                r = fail(&p, ROUTE_TEXT_MAX, "route longer than %u bytes", ROUTE_TEXT_MAX);
        else if (nul)
                r = fail(&p, (size_t) (nul - text), "NUL byte in route");
        else {
                route = calloc(1, sizeof(*route));
                if (!route)
                        return -ENOMEM;
                route->source.kind = _ROUTE_SOURCE_KIND_INVALID;
                route->sink.kind = _ROUTE_SINK_KIND_INVALID;
                route->text = strndup(text, len);
                if (!route->text)
                        return -ENOMEM;
                r = parse_frame(&p, route);
        }
        if (r == -EINVAL && !p.error)
                r = fail(&p, p.pos, "invalid route");
        r = error_hand_over(r, &p.error, ret_error);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(route);
        return 0;
}

bool route_source_match(const RouteSource *s, const RouteMessage *m) {
        if (!s || !m)
                return false;
        switch (s->kind) {
        case ROUTE_SOURCE_ALL:
        case ROUTE_SOURCE_MESSAGES:
                return true;
        case ROUTE_SOURCE_TELEMETRY:
                return !m->module_id;
        case ROUTE_SOURCE_MODULES:
                return !!m->module_id;
        case ROUTE_SOURCE_MODULE:
                return m->module_id && strcasecmp(m->module_id, s->module_id) == 0;
        case ROUTE_SOURCE_MODULE_OUTPUTS:
                return m->module_id && m->output_name && strcasecmp(m->module_id, s->module_id) == 0;
        case ROUTE_SOURCE_MODULE_OUTPUT:
                return m->module_id && m->output_name && strcasecmp(m->module_id, s->module_id) == 0 &&
                       strcasecmp(m->output_name, s->output) == 0;
        default:
                return false;
        }
}

bool route_match(const Route *r, const RouteMessage *m) {
        if (!r || !m || !route_source_match(&r->source, m))
                return false;
        return !r->condition || route_condition_match(r->condition, m);
}

bool route_sink_equal(const RouteSink *a, const RouteSink *b) {
        if (!a || !b || a->kind != b->kind)
                return false;
        if (a->kind != ROUTE_SINK_MODULE_INPUT)
                return true;
        /* Module ids are case-sensitive in IoT Hub; input names are ours to keep exact. */
        return strcmp(a->module_id, b->module_id) == 0 && strcmp(a->input, b->input) == 0;
}

int route_sink_to_string(const RouteSink *s, char **ret) {
        if (!s || !ret)
                return -EINVAL;
        switch (s->kind) {
        case ROUTE_SINK_UPSTREAM:
                *ret = strdup("$upstream");
                return *ret ? 0 : -ENOMEM;
        case ROUTE_SINK_MODULE_INPUT:
                if (asprintf(ret, "/modules/%s/inputs/%s", s->module_id, s->input) < 0)
                        return -ENOMEM;
                return 0;
        default:
                return -EINVAL;
        }
}

/* ---- tables ---- */

RouteTable *route_table_free(RouteTable *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n; i++) {
                free(t->entries[i].name);
                route_free(t->entries[i].route);
        }
        free(t->entries);
        free(t);
        return NULL;
}

static int errors_append(char **errors, const char *name, const char *error) {
        char *e;
        if (asprintf(&e, "%s%sroute '%s': %s", *errors ?: "", *errors ? "\n" : "", name, error) < 0)
                return -ENOMEM;
        free(*errors);
        *errors = e;
        return 0;
}

int route_table_new(const RouteSpecs *specs, RouteTable **ret, char **ret_errors) {
        _cleanup_(route_table_freep) RouteTable *t = NULL;
        _cleanup_free_ char *errors = NULL;
        int bad = 0, r;

        if (!specs || !ret)
                return -EINVAL;
        t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        if (specs->n > 0) {
                t->entries = calloc(specs->n, sizeof(*t->entries));
                if (!t->entries)
                        return -ENOMEM;
        }

        for (size_t i = 0; i < specs->n; i++) {
                const RouteSpec *spec = &specs->specs[i];
                _cleanup_free_ char *error = NULL;
                Route *route = NULL;

                r = route_parse(spec->text, strlen(spec->text), &route, &error);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        bad++;
                        r = errors_append(&errors, spec->name, error ?: "invalid route");
                        if (r < 0)
                                return r;
                        continue;
                }
                RouteTableEntry *e = &t->entries[t->n++];
                e->route = route;
                e->priority = spec->priority;
                e->time_to_live_secs = spec->time_to_live_secs;
                e->name = strdup(spec->name);
                if (!e->name)
                        return -ENOMEM;
        }

        if (ret_errors)
                *ret_errors = TAKE_PTR(errors);
        *ret = TAKE_PTR(t);
        return bad;
}

size_t route_table_match(const RouteTable *t, const RouteMessage *m, const RouteTableEntry **ret, size_t max) {
        size_t n = 0;

        if (!t || !m || !ret)
                return 0;
        for (size_t i = 0; i < t->n && n < max; i++) {
                const RouteTableEntry *e = &t->entries[i];
                if (!route_match(e->route, m))
                        continue;
                bool dup = false;
                for (size_t j = 0; j < n && !dup; j++)
                        dup = ret[j]->priority == e->priority && ret[j]->time_to_live_secs == e->time_to_live_secs &&
                              route_sink_equal(&ret[j]->route->sink, &e->route->sink);
                if (!dup)
                        ret[n++] = e;
        }
        return n;
}
