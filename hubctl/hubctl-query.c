/* One control request to a daemon, its JSON reply */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubctl/hubctl-query.h"
#include "proto/ipc/client.h"
#include "proto/ipc/frame.h"
#include "proto/ipc/wire.h"
#include "proto/util/cleanup.h"

static void frame_client_deinitp(FrameClient *c) {
        frame_client_deinit(c);
}

static void frame_builder_deinitp(FrameBuilder *b) {
        frame_builder_deinit(b);
}

int daemon_query(const char *socket_path, const char *command, uint64_t timeout_usec, json_t **ret,
                 char **ret_error) {
        return daemon_query_with(socket_path, command, NULL, NULL, timeout_usec, ret, ret_error);
}

int daemon_query_argument(const char *socket_path, const char *command, const char *argument, uint64_t timeout_usec,
                          json_t **ret, char **ret_error) {
        return daemon_query_with(socket_path, command, NULL, argument, timeout_usec, ret, ret_error);
}

int daemon_query_with(const char *socket_path, const char *command, const char *identity, const char *argument,
                      uint64_t timeout_usec, json_t **ret, char **ret_error) {
        _cleanup_(frame_client_deinitp) FrameClient client = FRAME_CLIENT_NULL;
        _cleanup_(frame_builder_deinitp) FrameBuilder request = FRAME_BUILDER_NULL;
        const FrameField *field;
        json_error_t jerr;
        json_t *json;
        Frame reply;
        int r, status;

        *ret_error = NULL;

        r = frame_client_init(&client, socket_path);
        if (r < 0)
                return r;

        frame_builder_init(&request, WIRE_CONTROL_REQUEST);
        frame_builder_add_string(&request, WIRE_COMMAND, command);
        if (identity)
                frame_builder_add_string(&request, WIRE_IDENTITY, identity);
        if (argument)
                frame_builder_add_string(&request, WIRE_ARGUMENT, argument);
        r = frame_client_call(&client, &request, timeout_usec, &reply);
        if (r < 0)
                return r;

        if (reply.type != WIRE_CONTROL_REPLY) {
                if (asprintf(ret_error, "reply of type %u, expected %u", reply.type, WIRE_CONTROL_REPLY) < 0)
                        *ret_error = NULL;
                return -EBADMSG;
        }

        status = wire_reply_status(&reply);
        if (status < 0) {
                if (status != -EBADMSG)
                        (void) frame_get_string(&reply, WIRE_ERROR, ret_error);
                else
                        *ret_error = strdup("reply without a status");
                return status;
        }

        field = frame_get(&reply, WIRE_JSON);
        if (!field) {
                *ret_error = strdup("reply without a JSON document");
                return -EBADMSG;
        }
        /* The length bounds the parse: the field is not NUL-terminated. */
        json = json_loadb((const char *) field->data, field->len, JSON_REJECT_DUPLICATES, &jerr);
        if (!json) {
                if (asprintf(ret_error, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text) < 0)
                        *ret_error = NULL;
                return -EBADMSG;
        }
        if (!json_is_object(json)) {
                json_decref(json);
                *ret_error = strdup("the JSON document is not an object");
                return -EBADMSG;
        }

        *ret = json;
        return 0;
}
