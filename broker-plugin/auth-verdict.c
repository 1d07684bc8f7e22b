/* What mosquitto answers a CONNECT with, given auth-cache's answer (or the lack of one) */
#include <errno.h>
#include <stdbool.h>

#include "broker-plugin/auth-verdict.h"
#include "broker-plugin/broker-api.h"

/*
 * mosquitto 2.0.11 handles a basic-auth plugin's result in
 * src/handle_connect.c, handle__connect(), the switch after
 * mosquitto_unpwd_check(): MOSQ_ERR_SUCCESS admits; MOSQ_ERR_AUTH sends
 * CONNACK 5 / 0x87 "not authorised"; anything else (MOSQ_ERR_PLUGIN_DEFER
 * aside, which means "ask the next plugin") becomes MOSQ_ERR_UNKNOWN and the
 * connection is closed without a CONNACK. There is no way for a basic-auth
 * plugin to send CONNACK 3 "server unavailable".
 *
 * The Azure IoT SDKs treat "not authorised" as final (UnauthorizedError is
 * not retried by their DefaultErrorFilter) but a connection closed before
 * its CONNACK as NotConnectedError, which they retry. So a device that
 * connects while auth-cache restarts must get the close: "not authorised"
 * would strand it until someone restarts it.
 */

bool auth_status_is_refusal(int status) {
        switch (status) {
        case -EACCES:       /* bad signature, wrong audience, client id mismatch, disabled, malformed */
        case -EPERM:
        case -ENOENT:       /* not in the device scope */
        case -EINVAL:       /* a request auth-cache cannot parse: what the device sent */
        case -EKEYEXPIRED:
        case -EKEYREJECTED:
        case -EKEYREVOKED:
                return true;
        default:
                /* Anything else (EAGAIN, EBUSY, EIO, ...) is auth-cache unable to decide: not the device's fault. */
                return false;
        }
}

int auth_verdict(int call, int status) {
        if (call < 0)
                return AUTH_VERDICT_UNAVAILABLE;
        if (status >= 0)
                return MOSQ_ERR_SUCCESS;
        return auth_status_is_refusal(status) ? MOSQ_ERR_AUTH : AUTH_VERDICT_UNAVAILABLE;
}
