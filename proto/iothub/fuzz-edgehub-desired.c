/* Fuzz target: the $edgeHub twin's desired properties, then a route table from its routes */
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/edgehub-desired.h"
#include "proto/iothub/route.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        EdgeHubDesired d = EDGEHUB_DESIRED_NULL;
        _cleanup_free_ char *error = NULL;

        log_set_max_level(LOG_CRIT);
        if (size > EDGEHUB_DESIRED_MAX + 1)
                return 0;

        int r = edgehub_desired_parse(data, size, &d, &error);
        /* Not assert(): the invariants must hold in -DNDEBUG builds too. */
        if (r < 0) {
                if (r != -ENOMEM && (!error || strchr(error, '\n') || d.schema_version))
                        abort();
                return 0;
        }
        if (error || !d.schema_version || d.routes.n > ROUTE_SPECS_MAX || d.ttl_secs > UINT32_MAX)
                abort();

        _cleanup_(route_table_freep) RouteTable *t = NULL;
        _cleanup_free_ char *errors = NULL;
        r = route_table_new(&d.routes, &t, &errors);
        if (r >= 0 && (t->n + (size_t) r != d.routes.n || (r > 0) != !!errors))
                abort();
        for (size_t i = 0; i < d.routes.n; i++)
                if (!route_spec_name_is_valid(d.routes.specs[i].name) ||
                    d.routes.specs[i].priority > ROUTE_PRIORITY_MAX)
                        abort();
        edgehub_desired_deinit(&d);
        return 0;
}
