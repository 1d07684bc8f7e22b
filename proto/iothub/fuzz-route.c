/* Fuzz target: route parsing, and evaluation against fixed messages */
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/route.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A device message and a module output, with application and system properties. */
static const struct {
        const char *identity, *bag, *output;
} messages[] = {
        { "dev1", "temp=21.5&alert=true&n=-2.5&word=seven&empty=&%24.ct=application%2Fjson&%24.mid=m-1", NULL },
        { "dev1/m1", "a=1&b=it%27s&%24.ce=utf-8&%24.cid=c", "o1" },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(route_freep) Route *route = NULL;
        _cleanup_free_ char *error = NULL;

        log_set_max_level(LOG_CRIT);
        if (size > 2 * ROUTE_TEXT_MAX)
                return 0;

        int r = route_parse((const char *) data, size, &route, &error);
        /* Not assert(): the invariants must hold in -DNDEBUG builds too. */
        if (r < 0) {
                if (r != -ENOMEM && (route || !error || strncmp(error, "position ", 9) != 0 || strchr(error, '\n')))
                        abort();
                return 0;
        }
        if (!route || error || route->source.kind < 0 || route->source.kind >= _ROUTE_SOURCE_KIND_MAX ||
            route->sink.kind < 0 || route->sink.kind >= _ROUTE_SINK_KIND_MAX)
                abort();

        _cleanup_free_ char *sink = NULL;
        if (route_sink_to_string(&route->sink, &sink) < 0)
                abort();

        for (size_t i = 0; i < ELEMENTSOF(messages); i++) {
                RouteMessage m;
                if (route_message_init(&m, messages[i].identity, messages[i].bag, strlen(messages[i].bag),
                                       messages[i].output) < 0)
                        abort();
                /* A match needs the source to match. */
                if (route_match(route, &m) && !route_source_match(&route->source, &m))
                        abort();
                route_message_deinit(&m);
        }
        return 0;
}
