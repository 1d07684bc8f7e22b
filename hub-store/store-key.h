/* Message-store keys: one ordered queue per endpoint, priority and sender */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "proto/iothub/iot-identity.h"

/*
 *   'q' | endpoint | 0x00 | priority (1 byte) | identity | 0x00 | seq (u64 big-endian)
 *
 * RocksDB orders keys bytewise, so all records of one (endpoint, priority,
 * identity) stream are contiguous and in sequence order: delivering one
 * sender's messages in order is a prefix scan, and a stream's next record is
 * one seek away. The NUL after each name keeps "d1" from being a prefix of
 * "d1/m". Endpoints other than $upstream and priorities other than 0 arrive
 * with routes (issue 3); the layout already has room for them.
 */
#define STORE_KEY_TAG 'q'
#define STORE_ENDPOINT_UPSTREAM "$upstream"
#define STORE_ENDPOINT_MAX 128u
#define STORE_PRIORITY_MAX 9u
#define STORE_IDENTITY_MAX (2u * IOT_ID_MAX + 1u)
#define STORE_KEY_MAX (1u + STORE_ENDPOINT_MAX + 1u + 1u + STORE_IDENTITY_MAX + 1u + 8u)

typedef struct StoreKey {
        uint8_t buf[STORE_KEY_MAX];
        size_t len;
} StoreKey;

typedef struct StoreKeyParts {
        const char *endpoint;  /* not NUL-terminated: see endpoint_len */
        size_t endpoint_len;
        uint8_t priority;
        const char *identity;  /* not NUL-terminated: see identity_len */
        size_t identity_len;
        size_t prefix_len;     /* bytes before seq: the stream prefix */
        uint64_t seq;
} StoreKeyParts;

/* The stream prefix (everything before seq). -EINVAL on empty, overlong or NUL-containing names. */
int store_key_stream_prefix(StoreKey *ret, const char *endpoint, uint8_t priority, const char *identity);
/* A record key. */
int store_key_format(StoreKey *ret, const char *endpoint, uint8_t priority, const char *identity, uint64_t seq);
/* A record key from a stream prefix (as built by store_key_stream_prefix()). */
void store_key_from_prefix(StoreKey *ret, const uint8_t *prefix, size_t prefix_len, uint64_t seq);
/* Splits a record key. -EBADMSG when it is not one. */
int store_key_parse(const void *key, size_t len, StoreKeyParts *ret);
