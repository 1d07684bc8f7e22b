/* Twin properties: IoT Hub's limits, JSON merge-patch, minimal diffs, versions */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A twin's desired and reported properties are JSON objects. IoT Hub's
 * restrictions (its device-twin developer guide), enforced here on what a
 * device sends:
 *   keys:    UTF-8, 1..1024 bytes, no C0/C1 control characters, no '.',
 *            '$' or space;
 *   values:  boolean, number, string, object, array (null only in a patch,
 *            where it deletes); strings up to 4 KiB; integers within
 *            [-2^52, 2^52 - 1];
 *   depth:   at most 10 nested containers below the properties object;
 *   size:    a properties document counts at most 32 KiB the way IoT Hub
 *            counts it (key characters + string characters, 8 per number,
 *            4 per boolean, nested values summed).
 * A patch is a JSON merge patch (RFC 7386): null deletes a key, an object
 * merges into an object, anything else replaces. Parsed once, here
 * (fuzz-twin-patch.c).
 */
#define TWIN_PATCH_BYTES_MAX (64u * 1024u)   /* raw bytes of one patch, before parsing */
#define TWIN_DOCUMENT_SIZE_MAX (32u * 1024u) /* IoT Hub's size of properties/reported (and desired) */
#define TWIN_DEPTH_MAX 10u
#define TWIN_KEY_BYTES_MAX 1024u
#define TWIN_STRING_BYTES_MAX 4096u
#define TWIN_INT_MAX INT64_C(4503599627370495)
#define TWIN_INT_MIN INT64_C(-4503599627370496)

/*
 * Parses a device's reported-properties patch. -EBADMSG: not JSON, or not
 * an object; -E2BIG: more than TWIN_PATCH_BYTES_MAX bytes; -EINVAL: a key,
 * value or depth outside the limits. *ret_error (optional, static text)
 * says why.
 */
int twin_patch_parse(const void *buf, size_t len, json_t **ret, const char **ret_error);
/* The checks of twin_patch_parse() on a tree; nulls allowed only when allow_null. */
int twin_properties_check(const json_t *props, bool allow_null, const char **ret_error);

/* IoT Hub's size of a properties document (top-level '$' keys are not counted). */
size_t twin_document_size(const json_t *doc);

/*
 * Applies a merge patch to target in place. Object values are merged
 * recursively and their nulls dropped, so a document never holds a null.
 * -ENOMEM; -EINVAL if target or patch is not an object.
 */
int twin_merge(json_t *target, const json_t *patch);

/*
 * Composes two merge patches in place: applying first (afterwards) equals
 * applying first then second, to any document. Nulls are kept (they delete
 * in the cloud). -EXDEV when no single merge patch does that: second merges
 * an object into a key that first sets to a non-object or deletes (the
 * result then depends on the document); first is unchanged then. -ENOMEM,
 * -EINVAL if either is not an object.
 */
int twin_patch_compose(json_t *first, const json_t *second);

/*
 * The minimal merge patch from -> to: removed keys as null, changed or new
 * values in full, nested objects diffed. twin_merge(from, diff) == to when
 * 'to' holds no nulls. An empty object when they are equal. NULL on ENOMEM
 * or when either is not an object.
 */
json_t *twin_diff(const json_t *from, const json_t *to);

/* A copy of props without its top-level '$' keys ($version, $metadata, ...). NULL on ENOMEM/not an object. */
json_t *twin_strip_metadata(const json_t *props);

/*
 * A properties object from the cloud (a desired patch, or the desired or
 * reported part of a full twin): must be an object with an integer
 * "$version" >= 0. Returns the properties without '$' keys and the version.
 * -EBADMSG otherwise.
 */
int twin_cloud_properties(const json_t *props, json_t **ret, int64_t *ret_version);

/* What a desired patch of version 'got' means for a copy at version 'have'. */
typedef enum TwinVersionStep {
        TWIN_VERSION_NEXT,   /* got == have + 1: apply it */
        TWIN_VERSION_STALE,  /* got <= have: already seen, ignore */
        TWIN_VERSION_GAP,    /* got > have + 1: patches were missed, fetch the full twin */
        _TWIN_VERSION_STEP_MAX,
        _TWIN_VERSION_STEP_INVALID = -22, /* -EINVAL */
} TwinVersionStep;

TwinVersionStep twin_version_step(int64_t have, int64_t got);
