/* Telling the local broker to disconnect identities that lost their access */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

#include "proto/util/cleanup.h"

/*
 * auth-cache on the internal bus (proto/ipc/bus.h, as "$edgehub/auth-cache"). A
 * kick is a QoS 1 publish to "$edgehub/kick" whose payload is the client id
 * to disconnect; the broker plugin acts on it. Kicks wait in a small
 * pending set until the broker acknowledges them, so a broker that is down
 * gets them when it is back. Duplicates are harmless: kicking a client that
 * is gone does nothing.
 */
typedef struct BrokerLink BrokerLink;

#define BROKER_KICKS_MAX 10000u

int broker_link_new(BrokerLink **ret, sd_event *e, const char *socket_path);
BrokerLink *broker_link_free(BrokerLink *l);

/* Queues a kick (deduplicated). -ENOBUFS when BROKER_KICKS_MAX are pending. */
int broker_link_kick(BrokerLink *l, const char *client_id);
/* Forgets a pending kick not yet sent (the identity is back in good standing). */
void broker_link_unkick(BrokerLink *l, const char *client_id);

size_t broker_link_pending(const BrokerLink *l);
bool broker_link_connected(const BrokerLink *l);

DEFINE_CLEANUP_FUNC(BrokerLink, broker_link_free);
