/* A libmicrohttpd daemon driven by an sd-event loop (no thread of its own) */
#pragma once

#include <microhttpd.h>
#include <systemd/sd-event.h>

#include "proto/util/cleanup.h"

/*
 * MHD runs in its "external epoll" mode (the daemon is started with
 * MHD_USE_EPOLL): its epoll fd is one sd-event I/O source, MHD_run() handles
 * what is ready, and a timer follows MHD_get_timeout() for idle connections.
 * Why not MHD's threads: handlers touch state only the loop's thread may
 * (STYLE.md §13), and a stuck HTTP client must not hide from the watchdog,
 * which only sees the loop. Shared by hub-store's metrics, the agent's
 * workload API and method-router's HTTPS listener.
 */
typedef struct HttpEvent HttpEvent;

/* Attaches d to e; d stays the caller's (MHD_stop_daemon() after http_event_free()). */
int http_event_attach(HttpEvent **ret, sd_event *e, struct MHD_Daemon *d, const char *description);
/* MHD_run() and re-arm the timer: also after MHD_resume_connection(), which MHD does not notice by itself. */
void http_event_run(HttpEvent *h);
/*
 * MHD_run() on the loop's next iteration rather than now: for code MHD may
 * be calling back into (a call answered from within a request handler that
 * resumes its connection, a deadline that shuts a connection). NULL is fine.
 */
void http_event_kick(HttpEvent *h);
HttpEvent *http_event_free(HttpEvent *h);

DEFINE_CLEANUP_FUNC(HttpEvent, http_event_free);
