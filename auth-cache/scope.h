/* The device scope in memory: identities, their keys and state */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "proto/util/cleanup.h"

/*
 * An identity is a device ("d") or a module ("d/m"), as IoT Hub names them
 * in client ids. Ids are case-sensitive (IoT Hub's rule), so lookups are
 * byte comparisons. A Scope is a sorted array: a gateway has a few thousand
 * identities at most, and a sync rebuilds the whole table anyway.
 */
/* authentication.type in IoT Hub's device scope. */
typedef enum IdentityAuth {
        IDENTITY_AUTH_SAS,
        IDENTITY_AUTH_SELF_SIGNED,  /* "selfSigned": the certificate's thumbprint is in the scope */
        IDENTITY_AUTH_CA,           /* "certificateAuthority": chains to the operator's CA bundle, CN = device id */
        _IDENTITY_AUTH_MAX,
        _IDENTITY_AUTH_INVALID = -EINVAL,
} IdentityAuth;

const char *identity_auth_to_string(IdentityAuth a);
IdentityAuth identity_auth_from_string(const char *s);

typedef struct Identity {
        char *name;          /* "d" or "d/m" */
        char *device_id;
        char *module_id;     /* NULL for a device */
        bool enabled;
        bool edge;           /* capabilities.iotEdge (devices only) */
        char *primary_key;   /* base64; NULL if the cloud sent none */
        char *secondary_key; /* base64; NULL if the cloud sent none */
        IdentityAuth auth;
        char *primary_thumbprint;   /* selfSigned: lowercase hex SHA-1 (40) or SHA-256 (64); else NULL */
        char *secondary_thumbprint;
} Identity;

typedef struct Scope {
        Identity **items;
        size_t n_items;
        size_t n_allocated;
        bool sorted;
} Scope;

/* -EINVAL unless device_id (and module_id if given) pass iot_id_is_valid(). */
int identity_new(Identity **ret, const char *device_id, const char *module_id);
/* Wipes the keys before freeing them. */
Identity *identity_free(Identity *id);
/* The key to mint tokens with: primary, else secondary, else NULL. */
const char *identity_key(const Identity *id);
/* Same state, keys, authentication kind and thumbprints (names equal assumed). */
bool identity_equal(const Identity *a, const Identity *b);
/* b no longer holds one of a's keys: tokens signed with it stop verifying (names equal assumed). */
bool identity_keys_revoked(const Identity *a, const Identity *b);

/*
 * True when a sync took away the certificate credential old_id may have
 * connected with: the authentication kind changed, or a selfSigned
 * thumbprint of old_id is not one of new_id's. Its connection must close.
 */
bool identity_certificate_revoked(const Identity *old_id, const Identity *new_id);

int scope_new(Scope **ret);
Scope *scope_free(Scope *s);

/* Takes *id on success (and sets it NULL). Call scope_finalize() before lookups. */
int scope_add(Scope *s, Identity **id);
/* Moves every identity of src into dst; src ends up empty. */
int scope_take_all(Scope *dst, Scope *src);

/* Sorts and drops duplicate names (the first added wins, warning logged). Returns how many were dropped. */
int scope_sort(Scope *s);

/*
 * Sorts, drops duplicate names (the first added wins, warning logged),
 * drops modules whose device is neither the edge device nor in the scope,
 * and disables modules whose device is disabled. Returns how many were dropped.
 */
int scope_finalize(Scope *s, const char *edge_device_id);

/* NULL if absent. The scope must be finalized. */
const Identity *scope_find(const Scope *s, const char *name);

/*
 * Walks old and new (both finalized) in name order and calls changed() for
 * every name in either, with the old and new identity (NULL when absent),
 * skipping identical ones. A non-zero return stops the walk and is returned.
 */
typedef int (*ScopeDiffFunc)(const Identity *old_id, const Identity *new_id, void *userdata);
int scope_diff(const Scope *old_scope, const Scope *new_scope, ScopeDiffFunc changed, void *userdata);

DEFINE_CLEANUP_FUNC(Identity, identity_free);
DEFINE_CLEANUP_FUNC(Scope, scope_free);
