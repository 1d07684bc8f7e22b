/* The agent's saved deployment file (storage.dir/agent/deployment.json) as read back at start */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/*
 * {"manifest": {...}|null, "source": "file"|"twin", "twinVersion": N,
 *  "appliedAt": µs, "last": OUTCOME, "twin": OUTCOME}, every key optional.
 * We write it atomically (manager_save_deployment()), so damage means
 * someone else wrote it: the caller starts without it rather than never.
 * The manifest itself is checked by manifest_parse() when it is applied.
 */
typedef struct SavedDeployment {
        json_t *doc;          /* owns the borrowed references below */
        json_t *manifest;     /* NULL: none saved */
        const char *source;   /* NULL: not said */
        int64_t twin_version; /* -1: none */
        int64_t applied_at;   /* CLOCK_REALTIME µs; 0: unknown */
        json_t *last;         /* the last deployment's outcome; NULL: none */
        json_t *twin;         /* the last twin deployment's outcome; NULL: none */
} SavedDeployment;

#define SAVED_DEPLOYMENT_NULL { .twin_version = -1 }

/* -EBADMSG with *ret_error (a short reason) when not such a document; nothing is kept then. */
int saved_deployment_parse(const void *text, size_t len, SavedDeployment *ret, char **ret_error);
void saved_deployment_deinit(SavedDeployment *d);

/* One outcome: {"code": 100..599, "description": S, "version": N[, "source": S]}. */
typedef struct SavedOutcome {
        int code;
        const char *description; /* borrowed from the document */
        int64_t version;
        const char *source;      /* NULL: not said */
} SavedOutcome;

/* -EBADMSG: not an outcome (it only ever explains, never decides: the caller drops it). */
int saved_outcome_parse(json_t *o, SavedOutcome *ret);
