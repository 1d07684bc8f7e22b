/* Telemetry appended to the ingest log, which hub-store imports: no call per message */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/store/ingest-log.h"

/* How often the free disk space, and a room file that is not there yet, are looked at, at most. */
#define INGEST_FULL_CHECK_USEC (100u * 1000u)
/*
 * Refuse telemetry when the file system has less free space than this: the
 * importer needs room to copy the log into RocksDB (whose own reserve is
 * 8 MiB) before it can delete segments.
 */
#define INGEST_DISK_RESERVE_BYTES (16u << 20)

/* Our latest segments, for placing hub-store's import position in what we wrote. */
#define INGEST_APPEND_SEGMENTS 16u

typedef struct IngestAppend {
        IngestWriter *writer;
        char *room_path;        /* {runtime_dir}/ingest-room, written by hub-store's importer */
        const IngestRoom *room; /* mapped once it exists (reject_new) */
        uint64_t room_tried_usec;
        uint64_t total;         /* bytes this writer appended */
        struct {
                char name[INGEST_SEGMENT_NAME_MAX];
                uint64_t start;  /* total when its first record was appended */
        } segments[INGEST_APPEND_SEGMENTS];
        unsigned next_segment;   /* ring index */
        bool reject_when_full;  /* overflow: reject_new */
        bool sync_always;       /* sync: always */
        bool disk_low;          /* the cached answer */
        uint64_t disk_checked_usec;
        uint64_t written_since_check;
        char *dir;
} IngestAppend;

#define INGEST_APPEND_NULL ((IngestAppend){})

/* Opens the writer on {storage_dir}/ingest, created (0700) if missing. */
int ingest_append_init(IngestAppend *a, const char *storage_dir, const char *runtime_dir, bool reject_when_full,
                       bool sync_always);
void ingest_append_deinit(IngestAppend *a);

/*
 * Appends one message. 0: it is in the ingest log and may be acknowledged;
 * -ENOBUFS the store is full (reject_new: the message does not fit the
 * room hub-store published); -ENOSPC the disk is (nearly)
 * full; other -errno: not written.
 */
int ingest_append(IngestAppend *a, const char *identity, const char *properties, const void *payload, size_t len,
                  const char *output);
