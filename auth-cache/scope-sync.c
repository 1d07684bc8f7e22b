/* Fetching the device scope from the cloud: paging, retries, refresh */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth-cache/scope-page.h"
#include "auth-cache/scope-sync.h"
#include "proto/iothub/sas-token.h"
#include "proto/ipc/frame.h"
#include "proto/runtime/log.h"
#include "proto/util/backoff.h"
#include "proto/util/cleanup.h"
#include "proto/util/url.h"

#define CONNECT_TIMEOUT_MSEC 5000u
#define REQUEST_TIMEOUT_MSEC 30000u
#define SCOPE_API_VERSION "2018-08-30-preview"
#define SCOPE_PAGE_SIZE 100

struct ScopeSync {
        sd_event *event;
        const Config *config;
        ScopeSyncApplyFunc apply;
        void *userdata;

        HttpClient *http;
        HttpRequest *request;      /* the page in flight, NULL when idle */
        Scope *partial;            /* pages received so far */
        unsigned pages;

        sd_event_source *timer;    /* next attempt: retry or refresh */
        uint64_t backoff_usec;

        uint64_t last_attempt_ms;
        uint64_t last_success_ms;
        char *last_error;
        unsigned failures;
};

static char *strjoin2(const char *a, const char *b) {
        size_t na = strlen(a), nb = strlen(b);
        char *s = malloc(na + nb + 1);
        if (!s)
                return NULL;
        memcpy(s, a, na);
        memcpy(s + na, b, nb + 1);
        return s;
}

/* asprintf() that leaves *ret alone on failure (glibc leaves it undefined). */
static int format(char **ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int format(char **ret, const char *fmt, ...) {
        va_list ap;
        char *s;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int scope_sync_token_resource(const Config *config, char **ret) {
        return format(ret, "%s/devices/%s/modules/$edgeHub", config->hub_hostname, config->edge_device_id);
}

static int base_url(const Config *config, char **ret) {
        const char *host = config->upstream_host ? config->upstream_host : config->hub_hostname;
        bool v6 = strchr(host, ':');

        return format(ret, "https://%s%s%s:%u", v6 ? "[" : "", host, v6 ? "]" : "",
                      (unsigned) config->upstream_https_port);
}

int scope_sync_first_url(const Config *config, char **ret) {
        _cleanup_free_ char *base = NULL, *edge = NULL;
        int r;

        r = base_url(config, &base);
        if (r < 0)
                return r;
        r = url_encode(config->edge_device_id, strlen(config->edge_device_id), &edge);
        if (r < 0)
                return r;
        return format(ret, "%s/devices/%s/modules/%%24edgeHub/devicesAndModulesInDeviceScope"
                           "?api-version=" SCOPE_API_VERSION "&pageSize=%d",
                      base, edge, SCOPE_PAGE_SIZE);
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        ScopeSync *s = userdata;
        (void) scope_sync_start(s);
        return 0;
}

static void sync_arm(ScopeSync *s, uint64_t delay_usec) {
        uint64_t now;
        int r;

        (void) sd_event_now(s->event, CLOCK_BOOTTIME, &now);
        if (s->timer) {
                r = sd_event_source_set_time(s->timer, now + delay_usec);
                if (r >= 0)
                        r = sd_event_source_set_enabled(s->timer, SD_EVENT_ONESHOT);
        } else {
                r = sd_event_add_time(s->event, &s->timer, CLOCK_BOOTTIME, now + delay_usec, 0, on_timer, s);
                if (r >= 0)
                        (void) sd_event_source_set_description(s->timer, "scope-sync");
        }
        if (r < 0)
                log_error_errno(r, "Failed to schedule the next device scope sync, only the 'sync' command will run one: %m");
}

static void sync_reset(ScopeSync *s) {
        s->request = http_request_cancel(s->request);
        s->partial = scope_free(s->partial);
        s->pages = 0;
}

static void sync_failed(ScopeSync *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sync_failed(ScopeSync *s, const char *fmt, ...) {
        char text[512];
        va_list ap;
        uint64_t delay;

        va_start(ap, fmt);
        (void) vsnprintf(text, sizeof(text), fmt, ap);
        va_end(ap);

        sync_reset(s);
        /* The first failure is news, and so is a different one; repeats while the uplink stays down are not. */
        bool news = s->failures == 0 || !s->last_error || strcmp(s->last_error, text) != 0;
        free(s->last_error);
        s->last_error = strdup(text);
        s->failures++;

        /* Full jitter in [backoff/2, backoff]: many gateways coming back at once must not sync in lockstep. */
        delay = backoff_next(&s->backoff_usec, SCOPE_SYNC_BACKOFF_MIN_USEC, SCOPE_SYNC_BACKOFF_MAX_USEC);

        log_full(news ? LOG_WARNING : LOG_INFO,
                 "Device scope sync failed: %s; retrying in %llu ms",
                 text, (unsigned long long) (delay / 1000));
        sync_arm(s, delay);
}

static void sync_succeeded(ScopeSync *s, size_t n_identities) {
        sync_reset(s);
        free(s->last_error);
        s->last_error = NULL;
        s->failures = 0;
        s->backoff_usec = 0;
        s->last_success_ms = realtime_msec();
        log_info("Device scope synced: %zu identities; next refresh in %llu s",
                 n_identities, (unsigned long long) s->config->scope_refresh_sec);
        sync_arm(s, s->config->scope_refresh_sec * 1000000u);
}

static int sync_request(ScopeSync *s, const char *url);

static void on_page(HttpRequest *req, int error, const char *error_text, long status,
                    const uint8_t *body, size_t body_len, void *userdata) {
        ScopeSync *s = userdata;
        _cleanup_(scope_freep) Scope *page = NULL;
        _cleanup_free_ char *link = NULL, *url = NULL, *base = NULL;
        int r;

        s->request = NULL;
        if (error < 0) {
                sync_failed(s, "page %u: %s", s->pages + 1, error_text);
                return;
        }
        if (status != 200) {
                sync_failed(s, "page %u: HTTP status %ld", s->pages + 1, status);
                return;
        }

        r = scope_page_parse(body, body_len, s->config->edge_device_id, &page, &link);
        if (r < 0) {
                sync_failed(s, "page %u: %s", s->pages + 1,
                            r == -EBADMSG ? "malformed reply" : strerror(-r));
                return;
        }
        s->pages++;
        r = scope_take_all(s->partial, page);
        if (r < 0) {
                sync_failed(s, "%s", strerror(-r));
                return;
        }
        if (s->partial->n_items > SCOPE_SYNC_IDENTITIES_MAX) {
                sync_failed(s, "more than %u identities in scope", SCOPE_SYNC_IDENTITIES_MAX);
                return;
        }

        if (link) {
                if (s->pages >= SCOPE_SYNC_PAGES_MAX) {
                        sync_failed(s, "more than %u pages", SCOPE_SYNC_PAGES_MAX);
                        return;
                }
                r = base_url(s->config, &base);
                if (r >= 0) {
                        url = strjoin2(base, link);
                        r = url ? sync_request(s, url) : -ENOMEM;
                }
                if (r < 0)
                        sync_failed(s, "page %u: %s", s->pages + 1, strerror(-r));
                return;
        }

        r = scope_finalize(s->partial, s->config->edge_device_id);
        if (r < 0) {
                sync_failed(s, "%s", strerror(-r));
                return;
        }

        Scope *complete = TAKE_PTR(s->partial);
        size_t n = complete->n_items;
        r = s->apply(&complete, s->userdata);
        scope_free(complete);
        if (r < 0) {
                sync_failed(s, "could not apply the new scope: %s", strerror(-r));
                return;
        }
        sync_succeeded(s, n);
}

static int sync_request(ScopeSync *s, const char *url) {
        _cleanup_free_ char *resource = NULL, *token = NULL;
        uint64_t expiry = realtime_msec() / 1000u + s->config->token_ttl_sec;
        int r;

        r = scope_sync_token_resource(s->config, &resource);
        if (r < 0)
                return r;
        r = sas_token_mint(resource, s->config->edgehub_key, expiry, &token);
        if (r < 0)
                return r;

        HttpGet get = {
                .url = url,
                .authorization = token,
                .ca_file = s->config->upstream_ca_file,
                .connect_timeout_msec = CONNECT_TIMEOUT_MSEC,
                .timeout_msec = REQUEST_TIMEOUT_MSEC,
                .max_body = SCOPE_PAGE_BYTES_MAX,
        };
        r = http_client_get(s->http, &get, on_page, s, &s->request);
        explicit_bzero(token, strlen(token));
        if (r < 0)
                return r;
        log_debug("Device scope: requesting page %u", s->pages + 1);
        return 0;
}

int scope_sync_start(ScopeSync *s) {
        _cleanup_free_ char *url = NULL;
        int r;

        if (s->request)
                return 0;
        if (s->timer)
                (void) sd_event_source_set_enabled(s->timer, SD_EVENT_OFF);

        s->last_attempt_ms = realtime_msec();
        sync_reset(s);
        r = scope_new(&s->partial);
        if (r >= 0)
                r = scope_sync_first_url(s->config, &url);
        if (r >= 0)
                r = sync_request(s, url);
        if (r < 0)
                sync_failed(s, "could not start: %s", strerror(-r));
        return 1;
}

void scope_sync_get_status(const ScopeSync *s, ScopeSyncStatus *ret) {
        *ret = (ScopeSyncStatus) {
                .syncing = s->request != NULL,
                .last_attempt_ms = s->last_attempt_ms,
                .last_success_ms = s->last_success_ms,
                .last_error = s->last_error,
                .failures = s->failures,
        };
}

int scope_sync_new(ScopeSync **ret, sd_event *e, const Config *config,
                   ScopeSyncApplyFunc apply, void *userdata) {
        _cleanup_(scope_sync_freep) ScopeSync *s = NULL;
        int r;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(e);
        s->config = config;
        s->apply = apply;
        s->userdata = userdata;
        r = http_client_new(&s->http, e);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}

ScopeSync *scope_sync_free(ScopeSync *s) {
        if (!s)
                return NULL;
        sync_reset(s);
        s->timer = sd_event_source_disable_unref(s->timer);
        s->http = http_client_free(s->http);
        free(s->last_error);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}
