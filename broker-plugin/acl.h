/* Per-identity topic isolation (DESIGN.md invariant 5) */
#pragma once

#include "broker-plugin/identity.h"

/*
 * access is one of mosquitto's MOSQ_ACL_READ, _WRITE, _SUBSCRIBE,
 * _UNSUBSCRIBE; topic is a topic (read, write) or a filter (subscribe).
 * Returns MOSQ_ERR_SUCCESS or MOSQ_ERR_ACL_DENIED. A client that failed
 * client_classify() (kind _CLIENT_KIND_INVALID) is denied everything but
 * unsubscribing.
 */
int acl_decide(const Client *c, int access, const char *topic);

/* MOSQ_EVT_ACL_CHECK; userdata is the Plugin. */
int acl_check_callback(int event, void *event_data, void *userdata);
