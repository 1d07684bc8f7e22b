/* One control request to a daemon, its JSON reply */
#pragma once

#include <jansson.h>
#include <stdint.h>

#define HUBCTL_TIMEOUT_USEC (2u * 1000u * 1000u)

/*
 * Sends WIRE_CONTROL_REQUEST {COMMAND} to the daemon listening on
 * socket_path and returns the reply's JSON object in *ret.
 *   -ENOENT, -ECONNREFUSED  the daemon is not running
 *   -ETIMEDOUT              no reply within timeout_usec
 *   -EBADMSG                a malformed frame, no JSON, or JSON that is not an object
 *   other                   the daemon's own failure status
 * On failure *ret_error may hold a description (the daemon's WIRE_ERROR, or
 * where the JSON is broken); the caller frees it.
 */
int daemon_query(const char *socket_path, const char *command, uint64_t timeout_usec, json_t **ret,
                 char **ret_error);
/* The same with WIRE_ARGUMENT (NULL: none). */
int daemon_query_argument(const char *socket_path, const char *command, const char *argument, uint64_t timeout_usec,
                          json_t **ret, char **ret_error);
/* The same with the request fields IDENTITY and ARGUMENT, each where not NULL. */
int daemon_query_with(const char *socket_path, const char *command, const char *identity, const char *argument,
                      uint64_t timeout_usec, json_t **ret, char **ret_error);
