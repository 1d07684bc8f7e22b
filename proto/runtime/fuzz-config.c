/* Fuzz target: the YAML config parser over an in-memory file */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/route.h"
#include "proto/runtime/config.h"
#include "proto/runtime/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Config *c = NULL;
        char *error = NULL, *warnings = NULL;

        log_set_max_level(LOG_CRIT);
        if (size == 0 || size > 64 * 1024)
                return 0; /* fmemopen() refuses a zero size */

        FILE *f = fmemopen((void *) data, size, "r");
        if (!f)
                return 0;
        int r = config_parse(f, "fuzz.yaml", &c, &error, &warnings);
        fclose(f);

        /* Not assert(): the invariants must hold in -DNDEBUG builds too. */
        if (r < 0 && r != -ENOMEM && (!error || strchr(error, '\n') || c))
                abort();
        if (r >= 0) {
                if (!c || error || !c->edge_device_id || !c->hub_hostname || !c->gateway_hostname ||
                    !c->upstream_host || !c->edgehub_key || c->max_bytes < 1024 * 1024 || c->ttl_sec < 1 ||
                    !overflow_policy_to_string(c->overflow) || !sync_policy_to_string(c->sync))
                        abort();
                char *path = NULL;
                if (config_socket_path(c, "hub-store", &path) < 0)
                        abort();
                free(path);
                /* Config refuses bad routes, so every route it keeps parses. */
                for (size_t i = 0; i < c->routes.n; i++) {
                        Route *route = NULL;
                        if (route_parse(c->routes.specs[i].text, strlen(c->routes.specs[i].text), &route, NULL) < 0)
                                abort();
                        route_free(route);
                }
        }
        config_free(c);
        free(error);
        free(warnings);
        return 0;
}
