/* The message store's folder: where it is at start, and moving it where the deployment's storageFolder says */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "hub-store/manager.h"
#include "proto/ipc/wire.h"
#include "proto/runtime/log.h"
#include "proto/runtime/state-file.h"
#include "proto/store/kv.h"
#include "proto/util/cleanup.h"
#include "proto/util/shown.h"

/* A copy to another file system may take minutes on an SD card; the watchdog must not kill it half-way. */
#define MOVE_WATCHDOG_USEC (30u * 60u * 1000u * 1000u)
/* Free space kept beyond the store's own size when the copy is not hard links. */
#define MOVE_SPACE_MARGIN (16u << 20)

static int location_save(Manager *m) {
        _cleanup_free_ char *text = store_location_format(&m->location);
        if (!text)
                return -ENOMEM;
        return state_file_write(m->config->storage_dir, STORE_LOCATION_FILE, text);
}

/* Deletes a store folder RocksDB no longer has open; a failure only costs disk space. */
static void destroy_store_dir(const char *dir) {
        _cleanup_free_ char *error = NULL;

        if (access(dir, F_OK) < 0 && errno == ENOENT)
                return;
        int r = kv_destroy(dir, &error);
        if (r < 0)
                log_warning("Cannot delete the old message store '%s' (%s); delete it by hand", dir,
                            error ? error : strerror(-r));
}

int manager_storage_resolve(Manager *m) {
        _cleanup_free_ char *text = NULL, *error = NULL;
        size_t len;
        int r;

        r = state_file_read(m->config->storage_dir, STORE_LOCATION_FILE, STORE_LOCATION_MAX, &text, &len);
        if (r == -ENOENT) {
                /* Never moved: where it always was. */
                if (asprintf(&m->location.dir, "%s/" STORE_FOLDER_SUBDIR, m->config->storage_dir) < 0) {
                        m->location.dir = NULL;
                        return log_error_errno(-ENOMEM, "Out of memory");
                }
                return 0;
        }
        if (r < 0)
                return log_error_errno(r, "Cannot read '%s/" STORE_LOCATION_FILE "': %m", m->config->storage_dir);
        r = store_location_parse(text, len, &m->location, &error);
        if (r < 0)
                /* Guessing would open an empty store and hide the real one: refuse, say how to recover. */
                return log_error_errno(r, "'%s/" STORE_LOCATION_FILE "' is malformed (%s). It says where the message "
                                       "store is; fix it, or delete it to use '%s/" STORE_FOLDER_SUBDIR "'",
                                       m->config->storage_dir, error ? error : "out of memory",
                                       m->config->storage_dir);
        if (m->location.remove) {
                /* A finished move: the copy is whole, the old folder is garbage. */
                log_info("Deleting the message store's old folder '%s' (moved to '%s')", m->location.remove,
                         m->location.dir);
                destroy_store_dir(m->location.remove);
                (void) free_and_strdup(&m->location.remove, NULL);
                r = location_save(m);
                if (r < 0)
                        log_warning_errno(r, "Cannot update '%s/" STORE_LOCATION_FILE "': %m", m->config->storage_dir);
        }
        return 0;
}

/*
 * The move, in one event-loop callback so nothing is written between the
 * copy and the switch. Each step leaves the location file saying what is
 * whole (see store-location.h), so a crash anywhere is finished or undone
 * at the next start and loses nothing.
 */
static int storage_move(Manager *m, char **ret_error) {
        _cleanup_free_ char *from = strdup(store_dir(m->store)), *to = strdup(m->location.wanted);
        uint64_t messages = store_messages(m->store), watchdog_usec = 0;
        bool watchdog = sd_watchdog_enabled(false, &watchdog_usec) > 0;
        int r;

        if (!from || !to)
                return -ENOMEM;
        /* Anything there is a copy a crash interrupted: the file said 'wanted' before it was started. */
        destroy_store_dir(to);
        if (watchdog)
                (void) sd_notifyf(false, "WATCHDOG_USEC=%" PRIu64, (uint64_t) MOVE_WATCHDOG_USEC);
        log_notice("Moving the message store from '%s' to '%s' (%" PRIu64 " message(s)); devices wait meanwhile",
                   from, to, messages);
        r = store_checkpoint(m->store, to, ret_error);
        if (r >= 0) {
                /* From here the copy is whole: a crash finishes the move instead of redoing it. */
                (void) free_and_strdup(&m->location.dir, to);
                (void) free_and_strdup(&m->location.wanted, NULL);
                r = free_and_strdup(&m->location.remove, from);
                if (r >= 0)
                        r = location_save(m);
                if (r >= 0)
                        r = store_switch(m->store, to, ret_error);
        }
        if (watchdog)
                (void) sd_notifyf(false, "WATCHDOG_USEC=%" PRIu64, watchdog_usec);
        if (r < 0) {
                /* The store is (back) on 'from', whole: forget the copy. */
                (void) free_and_strdup(&m->location.dir, from);
                (void) free_and_strdup(&m->location.wanted, NULL);
                (void) free_and_strdup(&m->location.remove, NULL);
                int k = location_save(m);
                if (k < 0)
                        log_warning_errno(k, "Cannot update '%s/" STORE_LOCATION_FILE "': %m", m->config->storage_dir);
                destroy_store_dir(to);
                return r;
        }
        destroy_store_dir(from);
        (void) free_and_strdup(&m->location.remove, NULL);
        r = location_save(m);
        if (r < 0)
                log_warning_errno(r, "Cannot update '%s/" STORE_LOCATION_FILE "' (the next start deletes '%s'): %m",
                                  m->config->storage_dir, from);
        log_notice("Message store moved to '%s': %" PRIu64 " message(s), every one of them there", to,
                   store_messages(m->store));
        return 0;
}

static void storage_move_now(Manager *m) {
        _cleanup_free_ char *error = NULL;

        int r = storage_move(m, &error);
        free(m->storage_error);
        m->storage_error = NULL;
        if (r < 0) {
                if (asprintf(&m->storage_error, "moving to '%s' failed: %s", m->location.dir,
                             error ? error : strerror(-r)) < 0)
                        m->storage_error = NULL;
                log_error("Cannot move the message store, it stays in '%s': %s", m->location.dir,
                          error ? error : strerror(-r));
        }
}

static int on_move(sd_event_source *s, void *userdata) {
        Manager *m = userdata;

        m->move_source = sd_event_source_disable_unref(m->move_source);
        if (m->location.wanted)
                storage_move_now(m);
        return 0;
}

void manager_storage_resume(Manager *m) {
        /* A move a crash interrupted: the old folder is whole; do it again before serving anyone. */
        if (m->location.wanted)
                storage_move_now(m);
}

/* Why folder cannot hold the store, as errno and one line; 0 when it can. Creates the folder. */
static int storage_check(Manager *m, const char *folder, const char *to, char **ret_error) {
        const char *current = store_dir(m->store);
        size_t n = strlen(current), k = strlen(to);
        struct stat st, cur;
        struct statvfs vfs;
        int r;

        if ((k > n && strncmp(to, current, n) == 0 && to[n] == '/') ||
            (n > k && strncmp(current, to, k) == 0 && current[k] == '/'))
                return fail_errno(ret_error, EINVAL, "'%s' and the message store's folder '%s' are inside each other",
                                  to, current);
        r = mkdir_parents(folder, 0750);
        if (r < 0)
                return fail_errno(ret_error, -r, "cannot create '%s': %s%s", folder, strerror(-r),
                                  r == -EROFS || r == -EACCES
                                          ? " (it must be writable by the hub's user; under systemd, also add it to ReadWritePaths= of "
                                            "edgehub-hub-store.service)"
                                          : "");
        if (access(folder, W_OK) < 0) {
                int e = errno;
                return fail_errno(ret_error, e, "cannot write to '%s': %s%s", folder, strerror(e),
                                  e == EROFS || e == EACCES
                                          ? " (it must be writable by the hub's user; under systemd, also add it to ReadWritePaths= of "
                                            "edgehub-hub-store.service)"
                                          : "");
        }
        if (lstat(to, &st) == 0) {
                /* An empty folder is an invitation; anything else may be someone's data. */
                if (!S_ISDIR(st.st_mode) || rmdir(to) < 0)
                        return fail_errno(ret_error, EEXIST, "'%s' exists already and is not an empty folder: move it "
                                          "aside or choose another storageFolder", to);
        }
        if (stat(folder, &st) < 0 || stat(current, &cur) < 0 || statvfs(folder, &vfs) < 0) {
                int e = errno;
                return fail_errno(ret_error, e, "cannot inspect '%s': %s", folder, strerror(e));
        }
        /* On the same file system the copy is hard links; elsewhere it needs the store's size. */
        uint64_t need = st.st_dev == cur.st_dev ? 0 : store_disk_bytes(m->store) + MOVE_SPACE_MARGIN;
        uint64_t avail = (uint64_t) vfs.f_bavail * vfs.f_frsize;
        if (avail < need)
                return fail_errno(ret_error, ENOSPC, "'%s' has %" PRIu64 " bytes free, the message store needs %" PRIu64,
                                  folder, avail, need);
        return 0;
}

void manager_reply_storage_folder(Manager *m, const Frame *req, FrameBuilder *reply) {
        _cleanup_free_ char *folder = NULL, *to = NULL, *error = NULL;
        int r;

        r = frame_get_string(req, WIRE_ARGUMENT, &folder);
        if (r < 0) {
                wire_reply_init(reply, WIRE_STORAGE_FOLDER_REPLY, EINVAL, "missing folder");
                return;
        }
        if (!store_location_path_is_valid(folder)) {
                wire_reply_init(reply, WIRE_STORAGE_FOLDER_REPLY, EINVAL,
                                "not an absolute, normalized path (no '.', '..' or '//')");
                return;
        }
        if (asprintf(&to, "%s/" STORE_FOLDER_SUBDIR, folder) < 0) {
                to = NULL;
                wire_reply_init(reply, WIRE_STORAGE_FOLDER_REPLY, ENOMEM, NULL);
                return;
        }
        if (m->location.wanted && strcmp(m->location.wanted, to) == 0)
                goto accepted; /* asked again while moving */
        if (strcmp(store_dir(m->store), to) == 0) {
                (void) free_and_strdup(&m->location.wanted, NULL); /* a newer request takes back one not started yet */
                goto accepted;
        }
        r = storage_check(m, folder, to, &error);
        if (r < 0) {
                log_warning("Refusing to move the message store to '%s': %s", folder, error ? error : strerror(-r));
                wire_reply_init(reply, WIRE_STORAGE_FOLDER_REPLY, -r, error);
                return;
        }
        r = free_and_strdup(&m->location.wanted, to);
        if (r >= 0)
                r = location_save(m);
        if (r < 0) {
                (void) free_and_strdup(&m->location.wanted, NULL);
                wire_reply_init(reply, WIRE_STORAGE_FOLDER_REPLY, -r, "cannot record the move");
                return;
        }
        /* Answer first: the agent must not wait for a copy that may take minutes. */
        if (!m->move_source) {
                r = sd_event_add_defer(m->event, &m->move_source, on_move, m);
                if (r < 0) {
                        /* Nothing lost: the file says 'wanted', the next start moves it. */
                        log_warning_errno(r, "Cannot schedule the move, it happens at the next start: %m");
                        m->move_source = NULL;
                }
        }
accepted:
        wire_reply_init(reply, WIRE_STORAGE_FOLDER_REPLY, 0, NULL);
}
