/* Who a broker client is: a device, a module, or one of our own daemons */
#include <stdbool.h>
#include <string.h>

#include "broker-plugin/broker-api.h"
#include "broker-plugin/identity.h"

bool client_address_is_internal(const char *address, const char *broker_socket) {
        if (!address)
                return false;
        /*
         * Only a Unix-socket connection has an address that is not an IP
         * literal; still, match our listener's path rather than any '/', so
         * that a Unix listener someone adds by hand is not trusted as well.
         */
        if (broker_socket && strcmp(address, broker_socket) == 0)
                return true;
        return strcmp(address, UNIX_SOCKET_ADDRESS) == 0;
}

static bool username_is_internal(const char *username) {
        size_t n = strlen(INTERNAL_USERNAME_PREFIX);
        return username && strncmp(username, INTERNAL_USERNAME_PREFIX, n) == 0 && username[n] != '\0';
}

/* Copies len bytes of an id into a buffer of IOT_ID_MAX + 1 and validates it there. */
static int id_copy(char dest[static IOT_ID_MAX + 1], const char *s, size_t len) {
        if (len == 0 || len > IOT_ID_MAX)
                return -EINVAL;
        memcpy(dest, s, len);
        dest[len] = '\0';
        return iot_id_is_valid(dest) ? 0 : -EINVAL;
}

int client_classify(const char *address, const char *broker_socket, const char *username, const char *client_id,
                    Client *ret) {
        Client c = { .kind = CLIENT_DEVICE };
        int r;

        *ret = CLIENT_NULL;

        if (username_is_internal(username)) {
                if (!client_address_is_internal(address, broker_socket))
                        return -EPERM;
                *ret = (Client){ .kind = CLIENT_INTERNAL };
                return 0;
        }

        if (!client_id)
                return -EINVAL;
        if (strncmp(client_id, INTERNAL_CLIENT_ID_PREFIX, strlen(INTERNAL_CLIENT_ID_PREFIX)) == 0)
                return -EPERM;
        /* iot_id_is_valid() admits no '/', '+' or '#': an id can never widen a topic filter. */
        const char *slash = strchr(client_id, '/');
        r = id_copy(c.device, client_id, slash ? (size_t) (slash - client_id) : strlen(client_id));
        if (r < 0)
                return r;
        if (slash) {
                r = id_copy(c.module, slash + 1, strlen(slash + 1));
                if (r < 0)
                        return r;
                c.kind = CLIENT_MODULE;
        }

        *ret = c;
        return 0;
}

int client_classify_broker(const char *broker_socket, const struct mosquitto *client, Client *ret) {
        return client_classify(mosquitto_client_address(client), broker_socket, mosquitto_client_username(client),
                               mosquitto_client_id(client), ret);
}
