/* IoT Edge's workload API for the modules: tokens signed with their keys, which never leave the hub */
#pragma once

#include "proto/runtime/http-event.h"
#include "proto/util/cleanup.h"

typedef struct Manager Manager;
typedef struct WorkloadServer WorkloadServer;

/*
 * HTTP/1.1 on the Unix socket path (mode 0666: anyone may connect, the
 * caller's SO_PEERCRED uid says which module it is, agent/module-user.h):
 *   GET  /trust-bundle                         agent.ca_file, for anyone
 *   POST /modules/{m}/genid/{g}/sign           HMAC-SHA256 with m's key from
 *                                              auth-cache, only for m itself
 *                                              and its current generation id
 * Refusals are 4xx with IoT Edge's {"message": ...}: malformed (400),
 * unknown path (404) or method (405), too large (413), a caller that is no
 * running module or asks for another module or generation (403); the key
 * unavailable is 503. Nothing is signed unless all holds.
 */
int workload_server_new(WorkloadServer **ret, Manager *m, const char *path);
WorkloadServer *workload_server_free(WorkloadServer *s);

DEFINE_CLEANUP_FUNC(WorkloadServer, workload_server_free);
