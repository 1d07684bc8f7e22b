/* The edgeHub module's storageFolder: hub-store is told where its message store is to live */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/manager.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"
#include "proto/util/shown.h"

/* hub-store only checks the folder before it answers; the copy comes after the reply. */
#define STORAGE_CALL_TIMEOUT_USEC (2u * 1000u * 1000u)
#define STORAGE_RETRY_USEC (5u * 1000u * 1000u)

/* The folder a manifest asks for: its storageFolder, else where the configuration keeps everything. */
static const char *wanted_folder(Manager *m, const Manifest *manifest) {
        return manifest->storage_folder ? manifest->storage_folder : m->config->storage_dir;
}

#define STORAGE_UNREACHABLE 1

/* One request: 0 accepted; -errno refused, with *ret_error; STORAGE_UNREACHABLE when hub-store did not answer. */
static int storage_call(Manager *m, const char *folder, char **ret_error) {
        _cleanup_(frame_builder_deinit) FrameBuilder req = FRAME_BUILDER_NULL;
        _cleanup_free_ char *error = NULL;
        Frame reply;
        int r;

        frame_builder_init(&req, WIRE_STORAGE_FOLDER_REQUEST);
        frame_builder_add_string(&req, WIRE_ARGUMENT, folder);
        r = frame_client_call(&m->hub_store, &req, STORAGE_CALL_TIMEOUT_USEC, &reply);
        if (r < 0) {
                log_debug_errno(r, "hub-store did not answer the storage folder request: %m");
                return STORAGE_UNREACHABLE;
        }
        if (reply.type != WIRE_STORAGE_FOLDER_REPLY)
                return STORAGE_UNREACHABLE; /* an older hub-store, or confusion: ask again later */
        r = wire_reply_status(&reply);
        if (r >= 0)
                return 0;
        /* hub-store names only folders it found valid (no control characters): safe to pass on whole. */
        (void) frame_get_string(&reply, WIRE_ERROR, &error);
        return fail_errno(ret_error, -r, "systemModules.edgeHub.env.storageFolder: %s", error ? error : strerror(-r));
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *error = NULL;

        int r = storage_call(m, m->storage_pending, &error);
        if (r == STORAGE_UNREACHABLE) {
                (void) sd_event_source_set_time_relative(s, STORAGE_RETRY_USEC);
                return 0;
        }
        (void) sd_event_source_set_enabled(s, SD_EVENT_OFF);
        if (r < 0) {
                /* The deployment runs already; say why its storageFolder did not take. */
                log_error("hub-store refused the deployment's storage folder '%s': %s", m->storage_pending,
                          error ? error : strerror(-r));
                manager_record_outcome(m, m->source, m->last_version, DESIRED_FAILED, error ? error : strerror(-r));
        } else {
                log_info("hub-store took the storage folder '%s'", m->storage_pending);
                free(m->storage_sent);
                m->storage_sent = TAKE_PTR(m->storage_pending);
        }
        free(m->storage_pending);
        m->storage_pending = NULL;
        return 0;
}

int manager_storage_folder(Manager *m, const Manifest *manifest, char **ret_error) {
        const char *folder = wanted_folder(m, manifest);
        int r;

        if (m->storage_sent && strcmp(m->storage_sent, folder) == 0 && !m->storage_pending)
                return 0; /* unchanged: hub-store has it */
        r = storage_call(m, folder, ret_error);
        if (r != STORAGE_UNREACHABLE) {
                if (r == 0) {
                        (void) free_and_strdup(&m->storage_sent, folder);
                        free(m->storage_pending);
                        m->storage_pending = NULL;
                        if (m->retry_storage)
                                (void) sd_event_source_set_enabled(m->retry_storage, SD_EVENT_OFF);
                }
                return r;
        }
        /* hub-store is not up (yet): the deployment goes ahead, the folder follows when it answers. */
        log_info("hub-store is not answering; telling it the storage folder '%s' later", folder);
        if (free_and_strdup(&m->storage_pending, folder) < 0)
                return 0;
        if (!m->retry_storage) {
                r = sd_event_add_time_relative(m->event, &m->retry_storage, CLOCK_MONOTONIC, STORAGE_RETRY_USEC, 0,
                                               on_retry, m);
                if (r < 0) {
                        log_warning_errno(r, "Cannot arm the storage folder retry: %m");
                        return 0;
                }
                (void) sd_event_source_set_description(m->retry_storage, "agent-storage-retry");
        } else
                (void) sd_event_source_set_time_relative(m->retry_storage, STORAGE_RETRY_USEC);
        (void) sd_event_source_set_enabled(m->retry_storage, SD_EVENT_ON);
        return 0;
}
