/* Fetching the device scope from the cloud: paging, retries, refresh */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "auth-cache/http-client.h"
#include "auth-cache/scope.h"
#include "proto/runtime/config.h"
#include "proto/util/cleanup.h"

/*
 * GET https://{upstream}/devices/{edge}/modules/%24edgeHub/devicesAndModulesInDeviceScope
 * with a token minted from edge.edgehub_key, following continuationLink
 * until the last page. Only a complete, all-pages result reaches apply();
 * any failure keeps the old scope. Failures retry with jittered backoff
 * (1 s doubling to 60 s); a success schedules the next refresh after
 * upstream.scope_refresh; scope_sync_start() runs one now (hub-store asks
 * when the uplink returns).
 */
typedef struct ScopeSync ScopeSync;

/* Takes *scope (finalized) on success. <0 counts as a failed sync (retried). */
typedef int (*ScopeSyncApplyFunc)(Scope **scope, void *userdata);

typedef struct ScopeSyncStatus {
        bool syncing;
        uint64_t last_attempt_ms;  /* realtime; 0 = never in this run */
        uint64_t last_success_ms;  /* realtime; 0 = never in this run */
        const char *last_error;    /* NULL after a success or before any attempt */
        unsigned failures;         /* consecutive */
} ScopeSyncStatus;

#define SCOPE_SYNC_PAGES_MAX 10000u
#define SCOPE_SYNC_IDENTITIES_MAX 100000u
#define SCOPE_SYNC_BACKOFF_MIN_USEC (1000u * 1000u)
#define SCOPE_SYNC_BACKOFF_MAX_USEC (60u * 1000u * 1000u)

/* config must outlive the ScopeSync. Nothing is fetched before scope_sync_start(). */
int scope_sync_new(ScopeSync **ret, sd_event *e, const Config *config,
                   ScopeSyncApplyFunc apply, void *userdata);
ScopeSync *scope_sync_free(ScopeSync *s);

/* Starts a sync now unless one is running: 1 started, 0 already running. */
int scope_sync_start(ScopeSync *s);
void scope_sync_get_status(const ScopeSync *s, ScopeSyncStatus *ret);

/* Exposed for tests: the first page's URL and the token resource. */
int scope_sync_first_url(const Config *config, char **ret);
int scope_sync_token_resource(const Config *config, char **ret);

DEFINE_CLEANUP_FUNC(ScopeSync, scope_sync_free);
