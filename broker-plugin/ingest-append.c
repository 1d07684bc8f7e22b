/* The plugin's side of the ingest log: telemetry appended before its PUBACK */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "broker-plugin/ingest-append.h"
#include "proto/ipc/frame.h"
#include "proto/runtime/log.h"

int ingest_append_init(IngestAppend *a, const char *storage_dir, const char *runtime_dir, bool reject_when_full,
                       bool sync_always) {
        int r;

        *a = (IngestAppend){ .reject_when_full = reject_when_full, .sync_always = sync_always };
        if (asprintf(&a->dir, "%s/" INGEST_DIR, storage_dir) < 0) {
                a->dir = NULL;
                return -ENOMEM;
        }
        /*
         * edgehub-run creates it for the broker's user; under the systemd
         * units the broker may start before hub-store made it, and a plugin
         * that fails here stops mosquitto for good (exit status 3).
         */
        if (mkdir(a->dir, 0700) < 0 && errno != EEXIST) {
                r = -errno;
                ingest_append_deinit(a);
                return r;
        }
        r = ingest_writer_open(a->dir, &a->writer);
        if (r < 0) {
                ingest_append_deinit(a);
                return r;
        }
        if (asprintf(&a->room_path, "%s/" INGEST_ROOM_FILE, runtime_dir) < 0) {
                a->room_path = NULL;
                ingest_append_deinit(a);
                return -ENOMEM;
        }
        return 0;
}

void ingest_append_deinit(IngestAppend *a) {
        ingest_writer_free(a->writer);
        ingest_room_unmap(a->room);
        free(a->room_path);
        free(a->dir);
        *a = INGEST_APPEND_NULL;
}

/* Invariant 4: never a crash or corruption on a full disk; and the importer keeps room to work. */
static bool ingest_disk_low(IngestAppend *a, size_t len) {
        struct statvfs v;
        uint64_t now = now_usec();

        a->written_since_check += len;
        if (a->disk_checked_usec != 0 && now - a->disk_checked_usec < INGEST_FULL_CHECK_USEC &&
            a->written_since_check < (1u << 20))
                return a->disk_low;
        a->disk_checked_usec = now;
        a->written_since_check = 0;
        if (statvfs(a->dir, &v) < 0)
                return false; /* cannot tell: write() will say */
        bool low = (uint64_t) v.f_bavail * v.f_frsize < INGEST_DISK_RESERVE_BYTES;
        if (low && !a->disk_low) {
                log_warning("Less than %u MiB free under '%s', refusing telemetry", INGEST_DISK_RESERVE_BYTES >> 20,
                            a->dir);
                /* A new segment now, so the importer may delete the one it finishes. */
                (void) ingest_writer_rotate(a->writer);
        }
        a->disk_low = low;
        return low;
}

/*
 * Invariant 4 under reject_new, exactly: hub-store published how many more
 * log bytes fit the budget after its import position; everything we wrote
 * after that position is not in the store yet and counts against it.
 */
static bool ingest_room_refuses(IngestAppend *a, size_t need) {
        IngestRoom r;

        if (!a->room) {
                uint64_t now = now_usec();
                if (a->room_tried_usec != 0 && now - a->room_tried_usec < INGEST_FULL_CHECK_USEC)
                        return false;
                a->room_tried_usec = now;
                /* hub-store has not measured yet (never started here): nothing to hold against. */
                if (ingest_room_open(a->room_path, &a->room) < 0) {
                        a->room = NULL;
                        return false;
                }
        }
        if (ingest_room_read(a->room, &r) < 0)
                return false;

        /* Not one of our segments (hub-store is still importing an older writer's): all we wrote counts. */
        uint64_t pending = a->total;
        for (unsigned i = 0; i < INGEST_APPEND_SEGMENTS; i++)
                if (a->segments[i].name[0] && strcmp(a->segments[i].name, r.segment) == 0) {
                        uint64_t pos = a->segments[i].start + r.offset;
                        pending = a->total > pos ? a->total - pos : 0;
                        break;
                }
        return pending + need > r.allow;
}

static void ingest_append_count(IngestAppend *a, size_t n) {
        uint64_t size;
        const char *name = ingest_writer_segment(a->writer, &size);

        if (name && size == n) {
                /* This record opened a new segment. */
                unsigned i = a->next_segment++ % INGEST_APPEND_SEGMENTS;
                memcpy(a->segments[i].name, name, INGEST_SEGMENT_NAME_MAX);
                a->segments[i].start = a->total;
        }
        a->total += n;
}

int ingest_append(IngestAppend *a, const char *identity, const char *properties, const void *payload, size_t len,
                  const char *output) {
        int r;

        /* Invariant 4 under reject_new: no PUBACK for what would not fit the store's budget. */
        size_t n = ingest_record_size(identity, properties, len, output);
        if (a->reject_when_full && ingest_room_refuses(a, n))
                return -ENOBUFS;
        if (ingest_disk_low(a, len))
                return -ENOSPC;

        /* Invariant 1: the caller acknowledges only after this complete write() (and fdatasync under sync: always). */
        r = ingest_writer_append(a->writer, identity, properties, payload, len, output, realtime_msec());
        if (r < 0)
                return r;
        ingest_append_count(a, n);
        if (a->sync_always)
                return ingest_writer_sync(a->writer);
        return 0;
}
