/* The device scope on disk: one RocksDB record per identity */
#pragma once

#include <stdint.h>

#include "auth-cache/scope.h"
#include "proto/store/kv.h"

/*
 * Keys in {storage_dir}/scope/:
 *   "i/" + name   -> identity record (scope_record_encode())
 *   "m/last_sync" -> u64 big-endian, realtime ms of the last complete sync
 * A sync is applied as one kv batch (deletes of names no longer in scope,
 * puts of new or changed ones, the meta key), so a crash leaves either the
 * old scope or the new one: DESIGN.md invariant 6 needs a whole scope.
 */
#define SCOPE_KEY_IDENTITY_PREFIX "i/"
#define SCOPE_KEY_LAST_SYNC "m/last_sync"

/* The compact record: u8 version, u8 flags, u16 len + primary, u16 len + secondary. */
int scope_record_encode(const Identity *id, uint8_t **ret, size_t *ret_len);
/* -EUCLEAN on a malformed record or name. */
int scope_record_decode(const char *name, size_t name_len, const void *buf, size_t len, Identity **ret);

/*
 * Loads every identity (finalized scope) and the last sync time (0 if none).
 * -EUCLEAN if a record cannot be decoded; kv errors are passed on.
 */
int scope_store_load(Kv *kv, Scope **ret, uint64_t *ret_last_sync_ms);

/* Replaces old_scope (may be NULL = empty) by new_scope on disk in one batch. */
int scope_store_apply(Kv *kv, const Scope *old_scope, const Scope *new_scope, uint64_t sync_ms);
