/* Who is on the other end of a Unix socket (SO_PEERCRED), and what the hub lets them do */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proto/ipc/peer.h"
#include "proto/util/number.h"

int peer_cred_get(int fd, PeerCred *ret) {
        struct ucred uc;
        socklen_t len = sizeof(uc);

        *ret = (PeerCred){ .uid = (uid_t) -1, .gid = (gid_t) -1 };
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
                return -errno;
        ret->pid = uc.pid;
        ret->uid = uc.uid;
        ret->gid = uc.gid;

        /* A peer in more groups than fit here (ERANGE) is judged by its primary group: never more rights. */
        gid_t groups[PEER_GROUPS_MAX * 4];
        len = sizeof(groups);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) >= 0) {
                size_t n = len / sizeof(gid_t);
                ret->n_groups = n < PEER_GROUPS_MAX ? n : PEER_GROUPS_MAX;
                memcpy(ret->groups, groups, ret->n_groups * sizeof(gid_t));
        }
        return 0;
}

bool peer_cred_in_group(const PeerCred *p, gid_t gid) {
        if (gid == (gid_t) -1)
                return false;
        if (p->gid == gid)
                return true;
        for (size_t i = 0; i < p->n_groups; i++)
                if (p->groups[i] == gid)
                        return true;
        return false;
}

static int group_lookup(const char *name, gid_t *ret, char **warning) {
        struct group *gr;

        *ret = (gid_t) -1;
        if (!name || !*name)
                return 0;
        errno = 0;
        gr = getgrnam(name);
        if (gr) {
                *ret = gr->gr_gid;
                return 0;
        }
        if (errno != 0 && errno != ENOENT && errno != ESRCH)
                return -errno;
        if (!*warning && asprintf(warning, "group '%s' does not exist: only root and the hub reach what it would",
                                  name) < 0)
                *warning = NULL;
        return 0;
}

int access_policy_from_config(const Config *c, AccessPolicy *ret, char **ret_warning) {
        AccessPolicy p = ACCESS_POLICY_NONE;
        const char *broker = getenv(BROKER_UID_ENV);
        char *warning = NULL;
        uint64_t v;
        int r;

        p.hub_uid = geteuid();
        if (broker && parse_u64(broker, strlen(broker), &v) >= 0 && v < UINT32_MAX)
                p.broker_uid = (uid_t) v;
        r = group_lookup(c->access_read_group, &p.read_gid, &warning);
        if (r >= 0)
                r = group_lookup(c->access_admin_group, &p.admin_gid, &warning);
        if (r < 0) {
                free(warning);
                return r;
        }
        *ret = p;
        if (ret_warning)
                *ret_warning = warning;
        else
                free(warning);
        return 0;
}

unsigned peer_rights(const AccessPolicy *policy, const PeerCred *p) {
        unsigned rights = 0;

        if (p->uid == (uid_t) -1)
                return 0;
        if (p->uid == 0 || p->uid == policy->hub_uid)
                return PEER_HUB | PEER_ADMIN | PEER_READ;
        if (p->uid == policy->broker_uid)
                rights |= PEER_BROKER;
        if (peer_cred_in_group(p, policy->admin_gid))
                rights |= PEER_ADMIN | PEER_READ;
        if (peer_cred_in_group(p, policy->read_gid))
                rights |= PEER_READ;
        return rights;
}

const char *peer_rights_describe(unsigned needed) {
        if (needed & PEER_READ)
                return "root, the hub and access.read_group or access.admin_group only";
        if (needed & PEER_ADMIN)
                return "root, the hub and access.admin_group only";
        if (needed & PEER_BROKER)
                return "the hub's daemons and its broker only";
        return "the hub's own daemons only";
}
