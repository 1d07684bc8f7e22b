/* Who is on the other end of a Unix socket (SO_PEERCRED), and what the hub lets them do */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "proto/runtime/config.h"

#define PEER_GROUPS_MAX 64u

typedef struct PeerCred {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        gid_t groups[PEER_GROUPS_MAX]; /* supplementary groups (SO_PEERGROUPS), at most PEER_GROUPS_MAX */
        size_t n_groups;
} PeerCred;

/* The credentials the kernel recorded when the peer connected (not spoofable by the peer). */
int peer_cred_get(int fd, PeerCred *ret);
bool peer_cred_in_group(const PeerCred *p, gid_t gid);

/*
 * What a peer may do, as a bitmask. A request names the rights any one of
 * which lets it through (FrameAccess in proto/ipc/server.h).
 *   PEER_HUB:    the hub's own daemons: root, or the uid this daemon runs as.
 *   PEER_BROKER: the broker's uid (edgehub-run starts mosquitto as its own
 *                user and passes its uid in $EDGEHUB_BROKER_UID): the calls
 *                the plugin makes (credential checks; the rest is on the bus).
 *   PEER_ADMIN:  root, the hub's uid, members of access.admin_group: commands that change things.
 *   PEER_READ:   the above and members of access.read_group: read-only commands.
 */
enum {
        PEER_READ = 1u << 0,
        PEER_ADMIN = 1u << 1,
        PEER_BROKER = 1u << 2,
        PEER_HUB = 1u << 3,
};

typedef struct AccessPolicy {
        uid_t hub_uid;
        uid_t broker_uid;  /* (uid_t) -1: none of its own */
        gid_t read_gid;    /* (gid_t) -1: none */
        gid_t admin_gid;   /* (gid_t) -1: none */
} AccessPolicy;

#define ACCESS_POLICY_NONE ((AccessPolicy){ (uid_t) -1, (uid_t) -1, (gid_t) -1, (gid_t) -1 })

/*
 * The policy of this process: its own uid, the broker's from the
 * environment, the groups of access.read_group/admin_group (a group that does
 * not exist admits nobody; *ret_warning says so, NULL otherwise).
 */
int access_policy_from_config(const Config *c, AccessPolicy *ret, char **ret_warning);
unsigned peer_rights(const AccessPolicy *policy, const PeerCred *p);
/* "the hub's daemons", "administrators (root, group 'x')", ... for a refusal message. */
const char *peer_rights_describe(unsigned needed);

#define BROKER_UID_ENV "EDGEHUB_BROKER_UID"
