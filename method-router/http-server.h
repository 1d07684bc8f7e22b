/* Direct methods over HTTPS, as the Azure module SDKs call the gateway (libmicrohttpd on sd-event) */
#pragma once

#include "method-router/manager.h"

/*
 * ModuleClient.invokeMethod (azure-iot-device, device_method/method_client.js)
 * sends POST /twins/{d}/methods or /twins/{d}/modules/{m}/methods (ids
 * encodeURIComponent'ed; IoT Hub's own API adds ?api-version=..., ignored
 * here) to the gateway host, with the headers
 *   Authorization: SharedAccessSignature ... (the calling module's own token)
 *   x-ms-edge-moduleId: {device}/{module}     (the caller)
 *   Content-Type: application/json
 * and the body {"methodName","payload","responseTimeoutInSeconds","connectTimeoutInSeconds"}.
 * It parses a 200 reply as JSON ({"status","payload"}); on other statuses it
 * reads IoT Hub's {"Message":"ErrorCode:X;text"} into err.message.
 *
 * The caller's token is checked by auth-cache (WIRE_AUTH_REQUEST, as if it
 * were a CONNECT of that identity) as soon as the headers are in, before any
 * of the body is read. Errors: 400 bad body or headers, 401 refused token,
 * 404 unknown or unconnected target, 405, 413, 503, 504.
 *
 * Exposed to the network, so: TLS 1.2 and 1.3 only, without SHA-1
 * (TLS_PRIORITIES, GnuTLS syntax); at most CONNECTIONS_PER_PEER_MAX
 * connections per peer address; and a connection must deliver its whole
 * request within REQUEST_DEADLINE_USEC of accept(), however it trickles.
 *
 * libmicrohttpd runs in its external epoll mode, no threads of its own:
 * sd-event watches its epoll fd and its timeout. A request waiting for a
 * device is a suspended MHD connection, resumed when the call ends.
 */
int http_server_new(HttpServer **ret, Manager *m);
HttpServer *http_server_free(HttpServer *s);
