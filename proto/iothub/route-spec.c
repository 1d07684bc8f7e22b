/* Route specifications: a route's name, text, priority and TTL as a source gave them */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto/iothub/route-spec.h"
#include "proto/util/cleanup.h"

bool route_spec_name_is_valid(const char *name) {
        if (!name)
                return false;
        size_t n = strnlen(name, ROUTE_NAME_MAX + 1);
        if (n == 0 || n > ROUTE_NAME_MAX)
                return false;
        /* Names end up in log lines and lastDesiredStatus descriptions. */
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) name[i] < 0x20 || name[i] == 0x7f)
                        return false;
        return true;
}

const RouteSpec *route_specs_find(const RouteSpecs *l, const char *name) {
        if (!l || !name)
                return NULL;
        for (size_t i = 0; i < l->n; i++)
                if (strcmp(l->specs[i].name, name) == 0)
                        return &l->specs[i];
        return NULL;
}

int route_specs_add(RouteSpecs *l, const char *name, const char *text, unsigned priority,
                    uint64_t time_to_live_secs) {
        if (!l || !text || !route_spec_name_is_valid(name) || priority > ROUTE_PRIORITY_MAX ||
            time_to_live_secs > UINT32_MAX)
                return -EINVAL;
        if (route_specs_find(l, name))
                return -EEXIST;
        if (l->n >= ROUTE_SPECS_MAX)
                return -E2BIG;

        _cleanup_free_ char *n = strdup(name), *t = strdup(text);
        if (!n || !t)
                return -ENOMEM;
        RouteSpec *specs = realloc(l->specs, (l->n + 1) * sizeof(*specs));
        if (!specs)
                return -ENOMEM;
        l->specs = specs;
        l->specs[l->n++] = (RouteSpec){
                .name = TAKE_PTR(n),
                .text = TAKE_PTR(t),
                .priority = (uint8_t) priority,
                .time_to_live_secs = (uint32_t) time_to_live_secs,
        };
        return 0;
}

void route_specs_deinit(RouteSpecs *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++) {
                free(l->specs[i].name);
                free(l->specs[i].text);
        }
        free(l->specs);
        *l = ROUTE_SPECS_NULL;
}

int route_specs_copy(const RouteSpecs *l, RouteSpecs *ret) {
        _cleanup_(route_specs_deinit) RouteSpecs copy = ROUTE_SPECS_NULL;

        if (!l || !ret)
                return -EINVAL;
        for (size_t i = 0; i < l->n; i++) {
                int r = route_specs_add(&copy, l->specs[i].name, l->specs[i].text, l->specs[i].priority,
                                        l->specs[i].time_to_live_secs);
                if (r < 0)
                        return r;
        }
        *ret = copy;
        copy = ROUTE_SPECS_NULL;
        return 0;
}
