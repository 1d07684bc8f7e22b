/* The folders edgehub-run prepares, and the files it hands to mosquitto */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "proto/runtime/config.h"

/*
 * mosquitto must be able to create {runtime_dir}/broker.sock, read its
 * config, the plugin's config, the TLS certificate and key, and connect to
 * the daemons' sockets, all as its own user. When edgehub-run is root and
 * the user "mosquitto" exists:
 *   - runtime_dir belongs to mosquitto:mosquitto with mode 02750: the setgid
 *     bit gives every socket the daemons create there the group mosquitto,
 *     so a 0660 socket lets the plugin in and nobody else;
 *   - edgehub-run starts mosquitto as that user itself (like systemd's
 *     User=), because mosquitto's own drop to "user" clears
 *     PR_SET_PDEATHSIG and the broker would outlive a killed runner;
 *   - the certificate and key are copied into runtime_dir, owned by
 *     mosquitto, key 0600: the originals may be root-only.
 * Otherwise (not root, or no such user) everything runs as the caller.
 * With a hub user (hub_user_lookup), runner_hub_dirs_setup() then gives
 * runtime_dir to that user, keeping mosquitto's group on it.
 */
typedef struct BrokerUser {
        bool switch_user;  /* start mosquitto as uid/gid */
        uid_t uid;
        gid_t gid;
        char *name;        /* "mosquitto", else "root" (the conf's user line) */
} BrokerUser;

#define BROKER_USER_NULL ((BrokerUser){ .uid = (uid_t) -1, .gid = (gid_t) -1 })

int broker_user_lookup(BrokerUser *ret);
void broker_user_deinit(BrokerUser *u);


/* Creates runtime_dir and storage_dir (0750) and hands runtime_dir to the broker user. */
int runner_dirs_setup(const Config *c, const BrokerUser *u);
/* Creates {storage_dir}/ingest, the ingest log's folder, for the broker user. */
int runner_ingest_dir_setup(const Config *c, const BrokerUser *u);

/*
 * The daemons' user when edgehub-run is root (runner.user, "edgehub"):
 * looked up, else created as a system user with its own group (useradd
 * --system). Everything stays the caller's (switch_user false) when the
 * runner is not root, runner.user is '', or the user is root.
 */
int hub_user_lookup(const char *name, BrokerUser *ret);

/*
 * With a hub user, who reaches what (the broker user's group is B):
 *   runtime_dir   hub:B 01771  the daemons bind there; mosquitto (group)
 *                 creates broker.sock; anyone else may only traverse, to
 *                 reach the sockets that check their peer (SO_PEERCRED);
 *                 sticky, so the broker cannot replace a daemon's socket.
 *   broker.sock   mosquitto with umask 0007: B 0770; the daemons have B as
 *                 a supplementary group; modules and local users cannot
 *                 connect (mosquitto cannot check a peer itself).
 *   storage_dir   hub:B 0750 and everything in it the hub's, but:
 *   ingest/       mosquitto:hub 02770, segments 0640: the plugin writes,
 *                 hub-store (group) reads and deletes.
 *   modules_dir   hub 0711: each module's own folder is made by the agent.
 */
int runner_hub_dirs_setup(const Config *c, const BrokerUser *broker, const BrokerUser *hub);

/* Copies src (at most 1 MiB) to dst like write_file_atomic(). */
int copy_file_atomic(const char *src, const char *dst, mode_t mode, uid_t uid, gid_t gid);

/*
 * Whether uid/gid can read the file at path, judging by the mode bits of the
 * file and of every folder on the way (not ACLs, not supplementary groups):
 * good enough to warn before mosquitto fails after its user switch.
 */
bool file_readable_by(const char *path, uid_t uid, gid_t gid);
