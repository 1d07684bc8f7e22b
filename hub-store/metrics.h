/* hub-store's Prometheus endpoint: libmicrohttpd driven by the Manager's sd-event loop */
#pragma once

#include <stddef.h>
#include <stdio.h>
#include <systemd/sd-event.h>

#include "proto/util/cleanup.h"

typedef struct Manager Manager;
typedef struct MetricsServer MetricsServer;

/*
 * Serves GET /metrics (Prometheus text format 0.0.4, rendered by
 * metrics_render() on each scrape) on address:port, a numeric IPv4 or IPv6
 * address. Binds before returning: -EADDRINUSE, -EACCES, ... from bind(),
 * -EINVAL for an address that is not numeric.
 */
int metrics_server_new(MetricsServer **ret, sd_event *event, Manager *m, const char *address, uint16_t port);
MetricsServer *metrics_server_free(MetricsServer *s);

/* metrics-render.c: every metric, from the counters the Manager and the store keep. */
int metrics_render(Manager *m, FILE *f);

/* metrics-render.c: s as a Prometheus label value (\\, \" and \n escaped). */
void metrics_write_label_value(FILE *f, const char *s);

DEFINE_CLEANUP_FUNC(MetricsServer, metrics_server_free);
