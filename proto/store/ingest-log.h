/* The ingest log: telemetry the broker acknowledged, waiting for hub-store to import it */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/ipc/frame.h"

/*
 * The broker plugin appends each telemetry
 * message to {storage_dir}/ingest/ and acknowledges it (DESIGN.md
 * invariant 1: a PUBACK means the message is in this file), and hub-store
 * imports the files into RocksDB in the background, in file order.
 *
 * Segment files: "{u64 start time ns, 20 digits}-{writer pid}.log", sorted by
 * name in the order they were started; a writer moves to a new segment at
 * INGEST_SEGMENT_MAX and after any failed write, so it never appends after a
 * torn record. A record, integers big-endian:
 *
 *   u32 body length | u32 CRC-32 (zlib) of the body | body
 *
 * The body is a proto/ipc/frame.h body of type WIRE_STORE_REQUEST with
 * WIRE_IDENTITY, WIRE_PROPERTIES, WIRE_PAYLOAD, [WIRE_OUTPUT], WIRE_TIME_MS.
 * Each record is written with one write(), so a record is either complete
 * and acknowledged, or the torn tail of a segment its writer left.
 */
#define INGEST_DIR "ingest"
#define INGEST_SEGMENT_MAX (16u * 1024u * 1024u)
#define INGEST_RECORD_HEADER_SIZE 8u
#define INGEST_SEGMENT_NAME_MAX 64u

typedef struct IngestWriter IngestWriter;

/* dir must exist. Opens no segment yet. */
int ingest_writer_open(const char *dir, IngestWriter **ret);
IngestWriter *ingest_writer_free(IngestWriter *w);
/*
 * Appends one record with one write(). output may be NULL. On any error
 * (short write included) the record is not acknowledged-worthy and the next
 * append starts a new segment.
 */
int ingest_writer_append(IngestWriter *w, const char *identity, const char *properties, const void *payload,
                         size_t len, const char *output, uint64_t time_ms);
/* The bytes ingest_writer_append() writes for this record (output may be NULL). */
size_t ingest_record_size(const char *identity, const char *properties, size_t len, const char *output);
/* Starts a new (empty) segment now if the current one holds records, so the importer may delete that one. */
int ingest_writer_rotate(IngestWriter *w);
/* fdatasync() of the current segment (sync: always). */
int ingest_writer_sync(IngestWriter *w);
/* The segment the next record goes to if it fits (NULL if none is open), and its size. */
const char *ingest_writer_segment(const IngestWriter *w, uint64_t *ret_size);

/*
 * The room file, {runtime_dir}/INGEST_ROOM_FILE: how much more the plugin
 * may append under reject_new, so the store's budget is not overshot by
 * messages the plugin already acknowledged. hub-store writes it after every
 * import pass, the plugin reads it before every append; both map it (no
 * syscall per message), and a sequence number (odd while hub-store writes)
 * keeps a read from seeing half an update.
 *
 * allow: ingest-log bytes that may still be appended after position
 * (segment, offset), the first byte not yet imported: the store's free
 * budget divided by how many store bytes one log byte became at most
 * lately (route fan-out, keys); UINT64_MAX under drop_oldest, which makes
 * room for anything. It is the plugin's only store-full back-pressure.
 */
#define INGEST_ROOM_FILE "ingest-room"
#define INGEST_ROOM_MAGIC UINT32_C(0x45524f31) /* "ERO1" */

typedef struct IngestRoom {
        uint32_t magic;
        uint32_t seq;
        uint64_t allow;
        uint64_t offset;
        char segment[INGEST_SEGMENT_NAME_MAX]; /* "" none */
} IngestRoom;

/* hub-store: creates or opens the file and maps it writable. */
int ingest_room_create(const char *path, IngestRoom **ret);
void ingest_room_publish(IngestRoom *m, const char *segment, uint64_t offset, uint64_t allow);
/* The plugin: maps an existing file read-only (-ENOENT: hub-store has not written one yet). */
int ingest_room_open(const char *path, const IngestRoom **ret);
/* A consistent copy; -EAGAIN if hub-store was mid-update every time, -EBADMSG if not a room file. */
int ingest_room_read(const IngestRoom *m, IngestRoom *ret);
void ingest_room_unmap(const IngestRoom *m);

/* One decoded record; strings are owned copies. */
typedef struct IngestRecord {
        char *identity;
        char *properties;       /* "" if the field was empty */
        char *output;           /* NULL if none */
        uint8_t *payload;
        size_t payload_len;
        uint64_t time_ms;
} IngestRecord;

#define INGEST_RECORD_NULL ((IngestRecord){})

void ingest_record_deinit(IngestRecord *r);

/*
 * Parses the record at the start of buf: its size in *ret_size. -EAGAIN when
 * buf holds only part of it, -EBADMSG on a bad length, CRC or body.
 */
int ingest_record_parse(const uint8_t *buf, size_t len, IngestRecord *ret, size_t *ret_size);

/* Reads records from a segment through a buffer (few syscalls per record). */
typedef struct IngestReader {
        uint8_t *buf;
        size_t cap;
        size_t len;             /* valid bytes in buf */
        uint64_t buf_offset;    /* file offset of buf[0] */
        int fd;                 /* the fd buf was filled from; -1 none */
} IngestReader;

#define INGEST_READER_NULL ((IngestReader){ .fd = -1 })

void ingest_reader_deinit(IngestReader *r);
/*
 * The complete, CRC-valid record at offset of fd; its size in *ret_size.
 * -EAGAIN when the file ends inside it (or exactly at offset), -EBADMSG on
 * garbage, other -errno on read errors.
 */
int ingest_reader_next(IngestReader *r, int fd, uint64_t offset, IngestRecord *ret, size_t *ret_size);

/* Is name a segment file name? */
bool ingest_segment_name_is_valid(const char *name);
