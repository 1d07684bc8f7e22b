/* Each module its own user: which uid, its private folder, and the switch before execve() */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "proto/runtime/config.h"

/*
 * A module runs as uid = gid = first + n of agent.module_uids, n from a hash
 * of its name (FNV-1a), the next one along (wrapping) when that uid is
 * another module's or a real account's (uid_taken says so). The same name
 * gets the same uid at every start, so its folder stays its own; two
 * modules never share one. No account is created: the kernel needs none.
 */
typedef bool (*UidTaken)(uid_t uid, void *userdata);
int module_uid_pick(const char *name, const UidRange *range, UidTaken taken, void *userdata, uid_t *ret);
/* FNV-1a of name (32 bits): part of the interface, since a uid owns its folder across restarts. */
uint32_t module_name_hash(const char *name);

/*
 * {modules_dir}/{name} (a name starting with '.' gets a leading '_'), made
 * 0700 and handed to uid:uid: the module's HOME and working folder.
 */
int module_dir_prepare(const char *modules_dir, const char *name, uid_t uid, char **ret_path);

/* Whether this process may start processes as other users (root, or CAP_SETUID and CAP_SETGID). */
bool module_users_possible(void);

/*
 * In the forked child, before execve(): no supplementary groups, gid and
 * uid, no capability left (ambient, inheritable, permitted: the agent's
 * CAP_SETUID must not reach the module), no_new_privs (a setuid binary
 * gives it nothing). Only async-signal-safe calls; <0 (errno set) on failure.
 */
int module_user_switch(uid_t uid);
