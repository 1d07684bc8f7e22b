/* Stand-ins for the broker functions the plugin's callbacks call (unit tests only) */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mqtt_protocol.h>
#include <openssl/x509.h>

#include "broker-plugin/broker-api.h"
#include "broker-plugin/test-broker-stubs.h"

char stub_kicked[256];
unsigned stub_kick_count;
const char *stub_connected[8];

const char *mosquitto_client_id(const struct mosquitto *client) {
        return client ? client->id : NULL;
}

const char *mosquitto_client_address(const struct mosquitto *client) {
        return client ? client->address : NULL;
}

void *mosquitto_client_certificate(const struct mosquitto *client) {
        if (!client || !client->cert)
                return NULL;
        X509_up_ref(client->cert);
        return client->cert;
}

const char *mosquitto_client_username(const struct mosquitto *client) {
        return client ? client->username : NULL;
}

int mosquitto_kick_client_by_clientid(const char *clientid, bool with_will) {
        for (size_t i = 0; i < sizeof(stub_connected) / sizeof(stub_connected[0]); i++)
                if (stub_connected[i] && clientid && strcmp(stub_connected[i], clientid) == 0) {
                        snprintf(stub_kicked, sizeof(stub_kicked), "%s", clientid);
                        stub_kick_count++;
                        return MOSQ_ERR_SUCCESS;
                }
        return MOSQ_ERR_NOT_FOUND;
}

void mosquitto_log_printf(int level, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

char stub_published_client[256];
char stub_published_topic[256];
unsigned stub_publish_count;
char stub_announced[STUB_ANNOUNCED_MAX][256];
unsigned stub_announce_count;
static unsigned stub_announce_taken;

void stub_announce_reset(void) {
        stub_announce_count = stub_announce_taken = 0;
}

const char *stub_announce_take(void) {
        if (stub_announce_taken >= stub_announce_count)
                return NULL;
        return stub_announced[stub_announce_taken++];
}

int mosquitto_broker_publish_copy(const char *clientid, const char *topic, int payloadlen, const void *payload,
                                  int qos, bool retain, mosquitto_property *properties) {
        snprintf(stub_published_client, sizeof(stub_published_client), "%s", clientid ? clientid : "");
        snprintf(stub_published_topic, sizeof(stub_published_topic), "%s", topic);
        stub_publish_count++;
        if (properties && stub_announce_count < STUB_ANNOUNCED_MAX) {
                char *name = NULL, *value = NULL;
                if (!mosquitto_property_read_string_pair(properties, MQTT_PROP_USER_PROPERTY, &name, &value, false))
                        name = value = NULL;
                snprintf(stub_announced[stub_announce_count++], sizeof(stub_announced[0]), "%s%s%s%s %s %.*s",
                         clientid ? "@" : "", clientid ? clientid : "", clientid ? " " : "", topic,
                         value ? value : "", payloadlen, (const char *) payload);
                free(name);
                free(value);
        }
        /* Owned by the broker on success. */
        mosquitto_property_free_all(&properties);
        return MOSQ_ERR_SUCCESS;
}

void *mosquitto_malloc(size_t size) {
        return malloc(size);
}

void mosquitto_free(void *mem) {
        free(mem);
}
