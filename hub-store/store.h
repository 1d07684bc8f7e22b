/* The message store: durable ordered queues in RocksDB, with budget and TTL */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hub-store/store-key.h"
#include "hub-store/store-record.h"
#include "proto/runtime/config.h"
#include "proto/store/key-map.h"
#include "proto/util/cleanup.h"

/*
 * Records live in RocksDB (proto/store/kv.h), never in RAM: memory holds one
 * StoreStream per (endpoint, priority, identity) with its counters, its head
 * (oldest stored record) and its tail, so a million queued messages cost a
 * few hundred bytes per sender. The counters are rebuilt by one scan at open.
 *
 * Invariants (DESIGN.md):
 *  1. store_append() returns only after RocksDB has the record in its WAL
 *     (fsync'ed too with sync_every_write); only then may anyone ack it.
 *     A failed write stores nothing and loses nothing already stored.
 *     Records imported from the ingest log may skip the WAL (see
 *     STORE_ORIGIN_INGEST): the log keeps them until a flush made them durable.
 *  3. Records leave only through store_remove() (delivered, or expired at
 *     send time), store_expire() (TTL) or the overflow policy in
 *     store_append(); every way out is counted.
 *  4. Bytes (key + value of every record) never exceed max_bytes.
 *
 * Every record with seq < head_seq of its stream is gone: the overflow
 * policy and the TTL sweep delete from the head, delivery deletes only
 * records it read. store_remove() relies on that to count each record once.
 */
typedef struct Store Store;

/*
 * Where a record comes from decides what an append may do with it.
 *
 * STORE_ORIGIN_INGEST: the ingest log holds it and the importer deletes a
 * segment only once store_mark_durable() says so. While the store holds a
 * backlog nobody reads (the uplink is down), such records skip RocksDB's
 * WAL: the log already wrote every byte once, and a flush writes them
 * again, synced, to a table file. After a crash RocksDB recovers a prefix
 * of those writes with the importer's position covering it, and the
 * importer imports the rest again. Records written so are not delivered
 * until a flush made them durable (store_read() holds them back), so what
 * a crash re-imports was never sent: no duplicates beyond today's, and
 * once one record skipped the WAL every imported record does until the
 * flush, so none can overtake another (invariant 2).
 */
typedef enum StoreOrigin {
        STORE_ORIGIN_NEW,               /* may be refused under reject_new */
        STORE_ORIGIN_ACKNOWLEDGED,      /* the sender has its PUBACK: stored over a reject_new budget */
        STORE_ORIGIN_INGEST,            /* acknowledged, and the ingest log keeps it until durable */
        _STORE_ORIGIN_MAX,
        _STORE_ORIGIN_INVALID = -22,
} StoreOrigin;

typedef struct StoreOptions {
        uint64_t max_bytes;
        OverflowPolicy overflow;
        bool sync_every_write;
        int max_open_files;        /* the store's table files kept open (KvOptions) */
} StoreOptions;

typedef struct StoreStream {
        char *endpoint;
        uint8_t priority;
        char *identity;
        StoreKey prefix;

        uint64_t messages;
        uint64_t bytes;
        uint64_t head_seq;      /* oldest stored record (valid when messages > 0) */
        uint64_t head_time_ms;  /* read it with store_stream_head_time_ms() */
        /*
         * Delivery removed the head: head_seq is only a lower bound and
         * head_time_ms the removed record's, until something that needs the
         * head looks it up (a seek per delivered message otherwise).
         */
        bool head_stale;
        uint64_t tail_seq;      /* newest stored record (valid when messages > 0) */
        uint64_t ttl_ms;        /* a route's time to live for this queue; 0: the store-wide one (not persisted) */

        /* Since start. */
        uint64_t received, delivered, expired, dropped, rejected;
        uint64_t removed_since_compact;
} StoreStream;

/* What one stored message looks like to readers; valid during the callback only. */
typedef struct StoreRecord {
        uint64_t seq;
        size_t size;            /* key + value bytes, for store_remove() */
        StoreMessage message;
} StoreRecord;

typedef enum StoreRemoveReason {
        STORE_REMOVE_DELIVERED,
        STORE_REMOVE_EXPIRED,
        STORE_REMOVE_DROPPED,   /* could never be sent (e.g. rejected by the upstream client) */
        _STORE_REMOVE_REASON_MAX,
        _STORE_REMOVE_REASON_INVALID = -22,
} StoreRemoveReason;

/*
 * Opens (creating) the store in dir and rebuilds the counters.
 * -EUCLEAN corrupt store (never repaired or deleted here), -EIO; *ret_error says why.
 */
int store_open(const char *dir, const StoreOptions *o, Store **ret, char **ret_error);
Store *store_free(Store *s);

/* The stream, created empty if new. -EINVAL on bad names. Streams live as long as the store. */
int store_stream_get(Store *s, const char *endpoint, uint8_t priority, const char *identity, StoreStream **ret);
/* The stream or NULL. */
StoreStream *store_stream_find(Store *s, const char *endpoint, uint8_t priority, const char *identity);
size_t store_n_streams(const Store *s);
StoreStream *store_stream_at(const Store *s, size_t i); /* in key order */

/*
 * Appends m (m->identity must be the stream's). -ENOBUFS when it does not
 * fit the budget under reject_new, or is larger than the whole budget;
 * -ENOSPC when the file system is (nearly) full, before RocksDB runs into
 * it; -EIO when RocksDB failed: nothing stored, nothing lost.
 */
int store_append(Store *s, StoreStream *st, const StoreMessage *m, uint64_t *ret_seq);
/*
 * The same for a message a device already has a PUBACK for (the ingest log):
 * under reject_new it is stored over the budget rather than refused, since
 * refusing it would lose it. The ingest importer keeps that overshoot small
 * by telling the plugin to refuse new messages near the budget.
 */
int store_append_acknowledged(Store *s, StoreStream *st, const StoreMessage *m, uint64_t *ret_seq);
/* Either of the above by origin, or an ingest-log record (STORE_ORIGIN_INGEST). */
int store_append_from(Store *s, StoreStream *st, const StoreMessage *m, StoreOrigin origin, uint64_t *ret_seq);

/* Small named values outside the message keys (the ingest importer's offsets). -ENOENT when absent. */
int store_meta_put(Store *s, const char *name, const void *val, size_t len);
int store_meta_get(Store *s, const char *name, void **ret, size_t *ret_len);
int store_meta_delete(Store *s, const char *name);

/*
 * The importer's position after records of STORE_ORIGIN_INGEST: written
 * without the WAL, in one batch with a durability mark, while any such
 * record waits for a flush (so no position can outlive the records it
 * covers); logged otherwise. *ret_mark: the mark store_mark_durable() must
 * reach before the ingest log may drop what the position covers (0: now).
 */
int store_meta_put_imported(Store *s, const char *name, const void *val, size_t len, uint64_t *ret_mark);
/*
 * Before an import pass: whether its records skip the WAL, decided for the
 * whole pass. -EAGAIN: import nothing now, a flush is due first (readers are
 * back); store_unlogged_poll() starts it.
 */
int store_import_begin(Store *s);
bool store_mark_durable(const Store *s, uint64_t mark);
/*
 * Looks at what the table files hold (a flush may have run), and starts a
 * flush when a reader waits for held records, or when idle (the importer had
 * nothing to do) and records still wait. Returns 1 when held records became
 * deliverable: the caller restarts the senders.
 */
int store_unlogged_poll(Store *s, bool idle);
/* Changes whenever the store was reopened or switched: what the importer read from it may be stale. */
uint64_t store_generation(const Store *s);

/*
 * Calls fn for the stream's records with seq >= from_seq, in order, until fn
 * returns non-zero (>0 stop, <0 error returned) or max records were passed.
 * Returns the number of records passed to fn, or <0. Undecodable records
 * can never be delivered: they are removed (counted as dropped) and logged.
 * It stops before a record that skipped the WAL and is not durable yet (and
 * asks for a flush): see STORE_ORIGIN_INGEST.
 */
typedef int (*StoreRecordFn)(void *userdata, const StoreRecord *r);
int store_read(Store *s, StoreStream *st, uint64_t from_seq, size_t max, StoreRecordFn fn, void *userdata);

/* Removes a record read by store_read(). -ENOENT if the TTL sweep or the overflow policy took it first. */
int store_remove(Store *s, StoreStream *st, uint64_t seq, size_t size, StoreRemoveReason reason);

/*
 * TTL sweep: removes records older than their stream's ttl_ms, or
 * default_ttl_ms where that is 0 (0 too: never), counted as expired,
 * from the head of each stream, at most max_removals per call so the event
 * loop is never blocked for long. Returns 1 if more remain, 0 when done.
 */
int store_expire(Store *s, uint64_t now_ms, uint64_t default_ttl_ms, size_t max_removals);

/* Reclaims disk space of streams that removed many records (kv_compact_range), a bounded amount per call. */
void store_compact_some(Store *s);

/* fsync the WAL if anything was written since the last sync (sync: periodic). */
int store_sync(Store *s);

/*
 * After a failed write (disk full, I/O error) every write returns -EIO
 * until store_reopen() succeeds: RocksDB must not touch a failed WAL again.
 * Reopening replays the WAL (everything acknowledged is there; a torn tail
 * is the write that failed) and recounts; streams stay where they are.
 */
bool store_is_broken(const Store *s);
int store_reopen(Store *s, char **ret_error);

/*
 * Moving the store to another folder (edgeHub's storageFolder): a
 * consistent copy in dir (must not exist), then store_switch() closes this
 * one and opens the copy, checking that it holds every message. Nothing may
 * be written between the two (the event loop's one callback). On failure
 * the store is back on its old folder; the copy is the caller's to delete.
 */
int store_checkpoint(Store *s, const char *dir, char **ret_error);
int store_switch(Store *s, const char *dir, char **ret_error);
const char *store_dir(const Store *s);

uint64_t store_messages(const Store *s);
uint64_t store_bytes(const Store *s);
uint64_t store_max_bytes(const Store *s);
uint64_t store_disk_bytes(Store *s);
/* The oldest enqueue time over all streams, or 0 when empty. O(streams). */
uint64_t store_oldest_time_ms(Store *s);
/* The stream's oldest enqueue time (0 when empty), looking the head up if delivery moved it. */
uint64_t store_stream_head_time_ms(Store *s, StoreStream *st);

DEFINE_CLEANUP_FUNC(Store, store_free);
