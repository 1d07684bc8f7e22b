/* The importer: ingest-log segments -> RocksDB, in order */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hub-store/ingest.h"
#include "proto/iothub/iot-identity.h"
#include "proto/runtime/log.h"
#include "proto/store/ingest-log.h"
#include "proto/util/cleanup.h"

/*
 * The plugin appended and acknowledged each record (DESIGN.md invariant 1
 * now reads: in the ingest log). This file keeps them safe on their way:
 *  - segments are imported in name order, each from its saved offset, so
 *    each identity's records enter its stream in the order they were
 *    acknowledged (invariant 2);
 *  - the offset of a segment is persisted in RocksDB after the records it
 *    covers, so a crash can only re-import a few records (duplicates are
 *    allowed by invariant 2), never skip one;
 *  - records may be written without RocksDB's WAL (STORE_ORIGIN_INGEST in
 *    store.h: a backlog nobody reads); the offset then goes in the same
 *    unlogged order with a durability mark, and a crash recovers an offset
 *    no further than the records RocksDB kept, so the rest is imported again;
 *  - a segment is deleted only when fully imported, the store synced, the
 *    mark of its last offset durable (flushed to a table file), and a
 *    newer segment exists (its writer moved on for good). An incomplete or
 *    corrupt tail of such a segment was never acknowledged: the plugin acks
 *    only after a complete write(), and never writes after a failed one.
 */
#define META_PREFIX "ingest/"

typedef struct Segment {
        char name[INGEST_SEGMENT_NAME_MAX];
        uint64_t offset;
        uint64_t mark;          /* store_mark_durable() of the saved offset; 0: durable */
} Segment;

struct Importer {
        Store *store;
        const Config *config;
        const ImporterOps *ops;
        void *userdata;
        char *dir;
        bool full;                     /* reject_new: logged as nearly full */
        sd_event_source *timer;
        sd_event_source *sync_timer;   /* sync: periodic */
        sd_event_source *watch;        /* inotify on the ingest folder: every append wakes the importer */
        bool pending;                  /* a pass is due now (the timer is at 0) */

        IngestRoom *room;              /* {runtime_dir}/ingest-room, what the plugin may still append */
        char at_name[INGEST_SEGMENT_NAME_MAX]; /* the import position: the first byte not imported */
        uint64_t at_offset;
        uint32_t ratio_q8;             /* store bytes per log byte at most lately, x256 */
        uint32_t window_q8;            /* the same within the current window */
        uint64_t window_start_usec;

        Segment *known;                /* offsets in memory, by name */
        size_t n_known, cap_known;
        uint64_t generation;           /* of the store they were read from or written to */
        uint64_t last_import_usec;     /* when a pass last imported something */

        char open_name[INGEST_SEGMENT_NAME_MAX];
        int open_fd;
        IngestReader reader;
};

static int segment_cmp(const void *a, const void *b) {
        return strcmp(((const Segment *) a)->name, ((const Segment *) b)->name);
}

/* The segment files, sorted; *ret to free. */
static int list_segments(const char *dir, Segment **ret, size_t *ret_n) {
        _cleanup_free_ Segment *v = NULL;
        size_t n = 0, cap = 0;
        DIR *d = opendir(dir);
        struct dirent *de;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                if (!ingest_segment_name_is_valid(de->d_name) || strlen(de->d_name) >= INGEST_SEGMENT_NAME_MAX)
                        continue;
                if (n == cap) {
                        size_t c = cap ? cap * 2 : 8;
                        Segment *p = realloc(v, c * sizeof(*p));
                        if (!p) {
                                closedir(d);
                                return -ENOMEM;
                        }
                        v = p;
                        cap = c;
                }
                memset(&v[n], 0, sizeof(v[n]));
                memcpy(v[n].name, de->d_name, strlen(de->d_name) + 1);
                n++;
        }
        closedir(d);
        if (n > 0)
                qsort(v, n, sizeof(*v), segment_cmp);
        *ret = TAKE_PTR(v);
        *ret_n = n;
        return 0;
}

static Segment *known_find(Importer *im, const char *name) {
        for (size_t i = 0; i < im->n_known; i++)
                if (strcmp(im->known[i].name, name) == 0)
                        return &im->known[i];
        return NULL;
}

static void known_forget(Importer *im, const char *name) {
        Segment *s = known_find(im, name);
        if (!s)
                return;
        *s = im->known[--im->n_known];
}

/* The saved offset of a segment: memory, else RocksDB, else 0. */
static int segment_offset(Importer *im, const char *name, Segment **ret) {
        _cleanup_free_ void *val = NULL;
        char key[sizeof(META_PREFIX) + INGEST_SEGMENT_NAME_MAX];
        size_t len = 0;
        uint64_t offset = 0;

        Segment *s = known_find(im, name);
        if (s) {
                *ret = s;
                return 0;
        }
        (void) snprintf(key, sizeof(key), META_PREFIX "%s", name);
        int r = store_meta_get(im->store, key, &val, &len);
        if (r < 0 && r != -ENOENT)
                return r;
        if (r >= 0 && len == sizeof(uint64_t))
                memcpy(&offset, val, sizeof(offset));

        if (im->n_known == im->cap_known) {
                size_t c = im->cap_known ? im->cap_known * 2 : 8;
                Segment *p = realloc(im->known, c * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                im->known = p;
                im->cap_known = c;
        }
        s = &im->known[im->n_known++];
        memset(s, 0, sizeof(*s));
        memcpy(s->name, name, strlen(name) + 1);
        s->offset = offset;
        *ret = s;
        return 0;
}

static int segment_save_offset(Importer *im, Segment *s) {
        char key[sizeof(META_PREFIX) + INGEST_SEGMENT_NAME_MAX];

        (void) snprintf(key, sizeof(key), META_PREFIX "%s", s->name);
        return store_meta_put_imported(im->store, key, &s->offset, sizeof(s->offset), &s->mark);
}

static int segment_open(Importer *im, const char *name) {
        if (im->open_fd >= 0 && strcmp(im->open_name, name) == 0)
                return im->open_fd;
        im->open_fd = safe_close(im->open_fd);
        ingest_reader_deinit(&im->reader);

        char path[PATH_MAX];
        (void) snprintf(path, sizeof(path), "%s/%s", im->dir, name);
        int sfd = open(path, O_RDONLY | O_CLOEXEC);
        if (sfd < 0)
                return -errno;
        im->open_fd = sfd;
        memcpy(im->open_name, name, strlen(name) + 1);
        return sfd;
}

/* A segment whose writer moved on and that is fully imported (up to any unacknowledged tail). */
static int segment_retire(Importer *im, const Segment *s, int fd) {
        char path[PATH_MAX], key[sizeof(META_PREFIX) + INGEST_SEGMENT_NAME_MAX];
        struct stat st;
        int r;

        /* Invariant 1: records that skipped the WAL live only here until a flush put them in a table file. */
        if (!store_mark_durable(im->store, s->mark))
                return 0;
        if (fstat(fd, &st) >= 0 && (uint64_t) st.st_size > s->offset)
                log_warning("Ingest segment '%s': %" PRIu64 " byte(s) after offset %" PRIu64
                            " are not a complete record (a write that failed, never acknowledged), skipping them",
                            s->name, (uint64_t) st.st_size - s->offset, s->offset);

        /* Invariant 1: the imported records must be durable before their only other copy goes. */
        r = store_sync(im->store);
        if (r < 0)
                return r;

        (void) snprintf(path, sizeof(path), "%s/%s", im->dir, s->name);
        if (unlink(path) < 0 && errno != ENOENT)
                return log_warning_errno(-errno, "Failed to remove imported ingest segment '%s': %m", path);
        (void) snprintf(key, sizeof(key), META_PREFIX "%s", s->name);
        (void) store_meta_delete(im->store, key);
        log_debug("Ingest segment '%s' imported and removed", s->name);

        if (strcmp(im->open_name, s->name) == 0) {
                im->open_fd = safe_close(im->open_fd);
                im->open_name[0] = 0;
                ingest_reader_deinit(&im->reader);
        }
        known_forget(im, s->name);
        return 0;
}

/*
 * One record into its streams. The plugin, another process, wrote the file:
 * its identity and bag are checked here, once, and the parse travels with
 * the message to the routes. <0 only for errors worth retrying.
 */
static int import_record(Importer *im, const IngestRecord *rec, size_t size) {
        _cleanup_(route_message_deinit) RouteMessage rm = ROUTE_MESSAGE_NULL;
        const char *output = rec->output && *rec->output ? rec->output : NULL;
        uint64_t before = store_bytes(im->store);
        int r;

        r = route_message_init(&rm, rec->identity, rec->properties, strlen(rec->properties), output);
        if (r == -ENOMEM)
                return r;
        if (r < 0 && !iot_identity_is_valid(rec->identity)) {
                log_warning("Ingest record of invalid identity '%s', skipping it", rec->identity);
                return 0;
        }
        StoreMessage msg = {
                .time_ms = rec->time_ms,
                .identity = rec->identity,
                .properties = rec->properties,
                .output = output,
                .payload = rec->payload,
                .payload_len = rec->payload_len,
        };
        r = im->ops->message(im->userdata, &msg, r < 0 ? NULL : &rm);
        /* Fan-out to several routes and keys make a log byte cost more than one store byte. */
        uint64_t after = store_bytes(im->store);
        if (after > before && size > 0) {
                uint64_t q8 = ((after - before) * 256u + size - 1) / size;
                if (q8 > im->window_q8)
                        im->window_q8 = q8 > UINT32_MAX ? UINT32_MAX : (uint32_t) q8;
        }
        if (r == -ENOBUFS) {
                /* Larger than the whole budget: it can never be stored (counted as rejected). */
                log_warning("Ingest record of '%s' (%zu bytes) exceeds the store's budget, dropping it",
                            rec->identity, rec->payload_len);
                return 0;
        }
        return r < 0 ? r : 0;
}

/* reject_new: the room file refuses; this only tells the operator, once per crossing. */
static void importer_log_full(Importer *im) {
        Store *s = im->store;

        if (im->config->overflow != OVERFLOW_REJECT_NEW)
                return;
        uint64_t bytes = store_bytes(s), max = store_max_bytes(s);
        if (!im->full && bytes * 100u >= max * IMPORTER_FULL_PERCENT) {
                im->full = true;
                log_warning("Message store nearly full (%" PRIu64 " of %" PRIu64 " bytes), refusing what does not fit",
                            bytes, max);
        } else if (im->full && bytes * 100u < max * IMPORTER_NOT_FULL_PERCENT) {
                im->full = false;
                log_notice("Message store below %u%% again", IMPORTER_NOT_FULL_PERCENT);
        }
}

int importer_run(Importer *im) {
        _cleanup_free_ Segment *segs = NULL;
        size_t n_segs = 0;
        unsigned imported = 0;
        int r;

        /* A reopened store may have lost what skipped its WAL: read the offsets it kept again. */
        if (store_generation(im->store) != im->generation) {
                im->generation = store_generation(im->store);
                im->n_known = 0;
                im->open_fd = safe_close(im->open_fd);
                im->open_name[0] = 0;
                ingest_reader_deinit(&im->reader);
        }

        r = list_segments(im->dir, &segs, &n_segs);
        if (r < 0)
                return log_warning_errno(r, "Failed to list '%s': %m", im->dir);
        if (store_import_begin(im->store) < 0)
                return 0;
        if (n_segs == 0) {
                im->at_name[0] = 0;
                im->at_offset = 0;
        }

        for (size_t i = 0; i < n_segs && imported < IMPORTER_BATCH; i++) {
                bool newest = i + 1 == n_segs;
                Segment *s;
                uint64_t before;

                r = segment_offset(im, segs[i].name, &s);
                if (r < 0)
                        return log_warning_errno(r, "Failed to read the offset of ingest segment '%s': %m",
                                                 segs[i].name);
                int fd = segment_open(im, s->name);
                if (fd == -ENOENT)
                        continue;
                if (fd < 0)
                        return log_warning_errno(fd, "Failed to open ingest segment '%s': %m", s->name);

                before = s->offset;
                memcpy(im->at_name, s->name, sizeof(im->at_name));
                for (;;) {
                        _cleanup_(ingest_record_deinit) IngestRecord rec = INGEST_RECORD_NULL;
                        size_t size;

                        if (imported >= IMPORTER_BATCH) {
                                r = -EINPROGRESS;
                                break;
                        }
                        r = ingest_reader_next(&im->reader, fd, s->offset, &rec, &size);
                        if (r < 0)
                                break;
                        r = import_record(im, &rec, size);
                        if (r < 0)
                                break;
                        s->offset += size;
                        imported++;
                }
                im->at_offset = s->offset;
                /* After the records it covers: a crash re-imports a few, never skips one. */
                if (s->offset != before) {
                        int k = segment_save_offset(im, s);
                        if (k < 0)
                                return log_warning_errno(k, "Failed to save the ingest offset of '%s': %m", s->name);
                }

                if (r == -EINPROGRESS)
                        break;
                if (r == -EAGAIN || r == -EBADMSG) {
                        if (newest) {
                                if (r == -EBADMSG)
                                        log_debug("Ingest segment '%s' has a bad record at %" PRIu64
                                                  ", waiting for the writer to move on", s->name, s->offset);
                                break;
                        }
                        r = segment_retire(im, s, fd);
                        if (r < 0)
                                return log_warning_errno(r, "Failed to retire ingest segment '%s': %m", s->name);
                        continue;
                }
                if (r < 0) {
                        /* Store failures (disk full, I/O): stop here and retry on the next tick, in order. */
                        log_debug("Ingest import paused at '%s':%" PRIu64 ": %s", s->name, s->offset, strerror(-r));
                        return r == -ENOMEM ? r : (int) imported;
                }
        }
        return (int) imported;
}

/*
 * After each pass: how much more the plugin may append without the store
 * overshooting its budget. The room file is the plugin's only view of the
 * store, so it says so under every policy: drop_oldest makes room for
 * anything (UINT64_MAX), reject_new only for what fits.
 */
static void importer_publish_room(Importer *im) {
        Store *s = im->store;
        uint64_t now = now_usec();

        if (im->config->overflow != OVERFLOW_REJECT_NEW) {
                ingest_room_publish(im->room, im->at_name, im->at_offset, UINT64_MAX);
                return;
        }
        /* The most of this window and the last: a change of routes or message sizes shows within a second. */
        if (now - im->window_start_usec >= IMPORTER_RATIO_WINDOW_USEC) {
                if (im->window_q8 > 0)
                        im->ratio_q8 = im->window_q8 > 256u ? im->window_q8 : 256u;
                im->window_q8 = 0;
                im->window_start_usec = now;
        }
        uint32_t q8 = im->window_q8 > im->ratio_q8 ? im->window_q8 : im->ratio_q8;
        uint64_t bytes = store_bytes(s), max = store_max_bytes(s);
        uint64_t allow = bytes < max ? (max - bytes) * 256u / q8 : 0;
        ingest_room_publish(im->room, im->at_name, im->at_offset, allow);
}

static void importer_schedule_now(Importer *im) {
        if (im->pending)
                return;
        im->pending = true;
        (void) sd_event_source_set_time_relative(im->timer, 0);
        (void) sd_event_source_set_enabled(im->timer, SD_EVENT_ON);
}

static int importer_on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Importer *im = userdata;
        int r = importer_run(im);

        importer_log_full(im);
        importer_publish_room(im);
        /*
         * Nothing imported for a while: flush what skipped the WAL, so its
         * segments can go. Not sooner: each flush is a table file that
         * compactions write again.
         */
        uint64_t now = now_usec();
        if (r > 0)
                im->last_import_usec = now;
        if (store_unlogged_poll(im->store, now - im->last_import_usec >= IMPORTER_FLUSH_IDLE_USEC) > 0)
                im->ops->durable(im->userdata);
        im->pending = false;
        /* A full batch: more is waiting, go on after the loop served the others. */
        if (r >= (int) IMPORTER_BATCH)
                importer_schedule_now(im);
        else
                (void) sd_event_source_set_time_relative(s, IMPORTER_IDLE_USEC);
        return 0;
}

/*
 * Every append wakes the importer, which imports what is there: the route
 * p99 at 1,000 msg/s must stay within 2 ms, and a polling tick of 5 ms
 * added up to that much. The wake-ups coalesce by themselves: the kernel
 * merges identical unread inotify events, and one pass is due at a time,
 * so under load a pass takes whatever accumulated while the last one ran.
 */
static int importer_on_inotify(sd_event_source *s, const struct inotify_event *event, void *userdata) {
        importer_schedule_now(userdata);
        return 0;
}

/* sync: periodic — the plugin does not fdatasync; this bounds what a power cut can take (invariant 1). */
static int importer_on_sync(sd_event_source *s, uint64_t usec, void *userdata) {
        Importer *im = userdata;
        _cleanup_free_ Segment *segs = NULL;
        size_t n = 0;
        char path[PATH_MAX];

        if (list_segments(im->dir, &segs, &n) >= 0)
                for (size_t i = 0; i < n; i++) {
                        (void) snprintf(path, sizeof(path), "%s/%s", im->dir, segs[i].name);
                        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
                        if (fd >= 0 && fdatasync(fd) < 0)
                                log_warning_errno(-errno, "Failed to sync ingest segment '%s', ignoring: %m", path);
                }
        (void) sd_event_source_set_time_relative(s, im->config->sync_interval_msec * 1000u);
        return 0;
}

int importer_new(sd_event *e, Store *store, const Config *config, const ImporterOps *ops, void *userdata,
                 Importer **ret) {
        _cleanup_(importer_freep) Importer *im = calloc(1, sizeof(*im));
        _cleanup_free_ char *path = NULL;
        int r;

        if (!im)
                return -ENOMEM;
        im->store = store;
        im->config = config;
        im->ops = ops;
        im->userdata = userdata;
        im->open_fd = -1;
        im->ratio_q8 = IMPORTER_RATIO_INITIAL_Q8;
        im->reader = INGEST_READER_NULL;
        if (asprintf(&im->dir, "%s/" INGEST_DIR, config->storage_dir) < 0) {
                im->dir = NULL;
                return -ENOMEM;
        }
        if (mkdir(im->dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (asprintf(&path, "%s/" INGEST_ROOM_FILE, config->runtime_dir) < 0)
                return -ENOMEM;
        /*
         * The plugin's only back-pressure under reject_new: without it the
         * store's budget would not hold, so no start. It is a small file in
         * the runtime folder, where our sockets go too: if it cannot be made,
         * neither can they.
         */
        r = ingest_room_create(path, &im->room);
        if (r < 0)
                return log_error_errno(r, "Failed to create '%s': %m", path);

        /* Accuracy 1 µs: sd-event must not defer a due pass to coalesce it with other timers. */
        r = sd_event_add_time_relative(e, &im->timer, CLOCK_MONOTONIC, 0, 1u, importer_on_timer, im);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(im->timer, "ingest-import");
        (void) sd_event_source_set_enabled(im->timer, SD_EVENT_ON);
        im->pending = true;

        r = sd_event_add_inotify(e, &im->watch, im->dir, IN_MODIFY | IN_CREATE | IN_MOVED_TO,
                                 importer_on_inotify, im);
        if (r < 0)
                /* Only latency depends on it: the timer still imports everything. */
                log_warning_errno(r, "Failed to watch '%s', importing on the timer only: %m", im->dir);
        else
                (void) sd_event_source_set_description(im->watch, "ingest-watch");

        if (config->sync == SYNC_PERIODIC) {
                r = sd_event_add_time_relative(e, &im->sync_timer, CLOCK_MONOTONIC,
                                               config->sync_interval_msec * 1000u, 10000u, importer_on_sync, im);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(im->sync_timer, "ingest-sync");
                (void) sd_event_source_set_enabled(im->sync_timer, SD_EVENT_ON);
        }
        *ret = TAKE_PTR(im);
        return 0;
}

Importer *importer_free(Importer *im) {
        if (!im)
                return NULL;
        im->timer = sd_event_source_disable_unref(im->timer);
        im->sync_timer = sd_event_source_disable_unref(im->sync_timer);
        im->watch = sd_event_source_disable_unref(im->watch);
        safe_close(im->open_fd);
        ingest_reader_deinit(&im->reader);
        if (im->room)
                (void) munmap(im->room, sizeof(*im->room));
        free(im->known);
        free(im->dir);
        free(im);
        return NULL;
}
