/* What mosquitto answers a CONNECT with, given auth-cache's answer (or the lack of one) */
#pragma once

#include <stdbool.h>

#include "broker-plugin/broker-api.h"

/* Not SUCCESS, AUTH or PLUGIN_DEFER: mosquitto closes the connection without a CONNACK. */
#define AUTH_VERDICT_UNAVAILABLE MOSQ_ERR_UNKNOWN

/*
 * call is backend_auth()'s return value (negative errno when auth-cache did
 * not answer: not running, restarting, timed out, backing off, a garbled
 * reply) and status its verdict when it answered (0 admits, negative errno
 * refuses). Returns MOSQ_ERR_SUCCESS, MOSQ_ERR_AUTH (CONNACK "not
 * authorised") only for a verdict that says the credentials are wrong, or
 * AUTH_VERDICT_UNAVAILABLE (the connection is closed without a CONNACK) when
 * nobody could tell.
 */
int auth_verdict(int call, int status);

/* True for an auth-cache status that means "these credentials are wrong" rather than "cannot tell now". */
bool auth_status_is_refusal(int status);
