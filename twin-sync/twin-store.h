/* twin-sync's RocksDB: twin records and the durable queue of reported patches */
#pragma once

#include <jansson.h>
#include <stdint.h>

#include "proto/store/kv.h"
#include "twin-sync/twin.h"

/*
 * Keys:
 *   "t/{identity}"              the twin record (JSON: desired, dv, reported,
 *                               rv, seen, sv, seq)
 *   "q/{identity}\0{seq:be64}"  a reported patch as the device sent it (nulls
 *                               kept, so deletions reach the cloud), in order
 * The NUL after the identity keeps "q/a" from being a prefix of "q/a/m".
 * A patch is written with its twin record in one batch before the device
 * gets its 204, and deleted only when the cloud answered 204 (DESIGN.md
 * invariants 1 and 3, for reported properties).
 */

/* Calls load() for every twin, with n_pending, pending_bytes and next_seq filled in. -EUCLEAN on a malformed record. */
int twin_store_load(Kv *kv, int (*load)(Twin **t, void *userdata), void *userdata);

/* Decodes a twin record's value into t (the untrusted part of a load; fuzz-twin-store-record.c). -EUCLEAN. */
int twin_store_record_decode(Twin *t, const void *val, size_t len);

/* Writes the twin record; with a patch (raw bytes) also queues it under t->next_seq - 1. */
int twin_store_save(Kv *kv, const Twin *t, const void *patch, size_t patch_len);
/* Writes the twin record and, in the same batch, replaces the queued patch seq (a merge of pending patches). */
int twin_store_replace(Kv *kv, const Twin *t, uint64_t seq, const void *patch, size_t patch_len);

/* The oldest queued patch of t: -ENOENT when none. *ret_patch is malloc'ed. */
int twin_store_head(Kv *kv, const Twin *t, uint64_t *ret_seq, void **ret_patch, size_t *ret_len);
/* The newest queued patch of t: -ENOENT when none. *ret_patch is malloc'ed. */
int twin_store_tail(Kv *kv, const Twin *t, uint64_t *ret_seq, void **ret_patch, size_t *ret_len);
/* Deletes a queued patch (the cloud acknowledged it). */
int twin_store_ack(Kv *kv, const Twin *t, uint64_t seq);

/* Every queued patch of t in order, as a JSON array of {seq, patch}. */
json_t *twin_store_pending(Kv *kv, const Twin *t);
