/* hubctl's views of the daemons' control replies: merge and human text */
#pragma once

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Inputs are the JSON documents the daemons return for a WIRE_CONTROL_REQUEST
 * (schemas in hubctl-main.c's help and in the daemons' control.c); NULL means
 * "that daemon did not answer", and what it would have told is left out (or
 * shown as "?"). A document that does not match its schema fails with
 * -EBADMSG and *error names the field; nothing is printed then. With f NULL
 * the render functions only validate.
 *
 * Unpacking is not JSON_STRICT on purpose: a daemon that grows a field must
 * not break an older hubctl, and --json passes the new field through.
 */

/* hub-store "status" + auth-cache "status"; now_ms: realtime, for "for 3m12s" and "5m ago". */
int render_status(FILE *f, json_t *hub_store, json_t *auth_cache, uint64_t now_ms, json_error_t *error);

/* hub-store "queues": one row per endpoint and priority. */
int render_queues(FILE *f, json_t *queues, json_error_t *error);

/*
 * hub-store "devices" + auth-cache "devices" -> {"devices":[...]}, sorted by
 * identity; every identity in scope plus any identity hub-store knows. Each:
 *   {"identity":s, "device_id":s|null, "module_id":s|null,
 *    "in_scope":b|null, "status":"enabled"|"disabled"|null, "edge":b|null,
 *    "connected":b|null, "link":s|null, "queued":n|null, "delivered":n|null}
 * null = the daemon that knows it did not answer (link is also null when
 * hub-store has no link for the identity).
 */
int devices_merge(json_t *store_devices, json_t *auth_devices, json_t **ret, json_error_t *error);
/* The merged document as a table. */
int render_devices(FILE *f, json_t *merged, json_error_t *error);

/* auth-cache "sync". */
int render_sync(FILE *f, json_t *sync, json_error_t *error);
/* hub-store's "routes": the table in force, its source and per-route counts. */
int render_routes(FILE *f, json_t *routes, json_error_t *error);
