/* Asks hub-store whether the uplink is down, so a restarted twin-sync knows at once */
#include <string.h>

#include <jansson.h>

#include "proto/ipc/client.h"
#include "proto/ipc/wire.h"
#include "proto/util/cleanup.h"
#include "twin-sync/uplink-query.h"

/*
 * hub-store announces a link on the bus only when it changes, and never
 * announces "down" for a link that was never up. A twin-sync that starts
 * while the uplink is cut would hear nothing and wait for the cloud on every
 * first GET (TWIN_FETCH_TIMEOUT_UNSURE_USEC) before answering from its cache.
 * hub-store's status (what `hubctl status` shows) says it at once.
 */

int uplink_status_parse(const void *data, size_t len, UplinkKnown *ret) {
        json_auto_t *j = NULL;
        const char *uplink = NULL;
        json_int_t links_up = -1;
        json_t *offline_since = NULL;

        /* The length bounds the parse: a frame field is not NUL-terminated. */
        j = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
        if (!j || json_unpack(j, "{s:s, s:I, s:o}", "uplink", &uplink, "links_up", &links_up, "offline_since_ms",
                              &offline_since) < 0)
                return -EBADMSG;
        if (links_up < 0 || !(json_is_integer(offline_since) || json_is_null(offline_since)))
                return -EBADMSG;
        if (strcmp(uplink, "up") != 0 && strcmp(uplink, "down") != 0 && strcmp(uplink, "idle") != 0)
                return -EBADMSG;

        if (links_up > 0 || strcmp(uplink, "up") == 0)
                *ret = UPLINK_KNOWN_UP;
        /* "down" alone also covers links that have not failed yet; offline_since_ms is set only once they did. */
        else if (strcmp(uplink, "down") == 0 && json_is_integer(offline_since))
                *ret = UPLINK_KNOWN_DOWN;
        else
                *ret = UPLINK_KNOWN_UNSURE;
        return 0;
}

int uplink_query(const char *socket_path, uint64_t timeout_usec, UplinkKnown *ret) {
        _cleanup_(frame_client_deinit) FrameClient c = FRAME_CLIENT_NULL;
        _cleanup_(frame_builder_deinit) FrameBuilder req = FRAME_BUILDER_NULL;
        const FrameField *field;
        Frame reply;
        int r;

        r = frame_client_init(&c, socket_path);
        if (r < 0)
                return r;
        frame_builder_init(&req, WIRE_CONTROL_REQUEST);
        frame_builder_add_string(&req, WIRE_COMMAND, "status");
        r = frame_client_call(&c, &req, timeout_usec, &reply);
        if (r < 0)
                return r;
        if (reply.type != WIRE_CONTROL_REPLY)
                return -EBADMSG;
        r = wire_reply_status(&reply);
        if (r < 0)
                return r;
        field = frame_get(&reply, WIRE_JSON);
        if (!field)
                return -EBADMSG;
        return uplink_status_parse(field->data, field->len, ret);
}
