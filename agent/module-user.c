/* Each module its own user: which uid, its private folder, and the switch before execve() */
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent/module-user.h"
#include "proto/util/cleanup.h"

uint32_t module_name_hash(const char *name) {
        uint32_t h = 2166136261u;

        for (const unsigned char *p = (const unsigned char *) name; *p; p++) {
                h ^= *p;
                h *= 16777619u;
        }
        return h;
}

int module_uid_pick(const char *name, const UidRange *range, UidTaken taken, void *userdata, uid_t *ret) {
        uint64_t count = (uint64_t) range->last - range->first + 1;
        uint64_t start = module_name_hash(name) % count;

        for (uint64_t i = 0; i < count; i++) {
                uid_t uid = (uid_t) (range->first + (start + i) % count);
                if (!taken || !taken(uid, userdata)) {
                        *ret = uid;
                        return 0;
                }
        }
        return -EUSERS;
}

int module_dir_prepare(const char *modules_dir, const char *name, uid_t uid, char **ret_path) {
        _cleanup_free_ char *path = NULL;
        struct stat st;

        if (asprintf(&path, "%s/%s%s", modules_dir, name[0] == '.' ? "_" : "", name) < 0)
                return -ENOMEM;
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return -errno;
        /* A symlink planted there would send the chown elsewhere: only a real folder will do. */
        if (lstat(path, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        if ((st.st_uid != uid || st.st_gid != uid) && lchown(path, uid, uid) < 0)
                return -errno;
        *ret_path = TAKE_PTR(path);
        return 0;
}

bool module_users_possible(void) {
        struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct data[2] = {};
        const uint32_t need = (1u << CAP_SETUID) | (1u << CAP_SETGID);

        if (geteuid() == 0)
                return true;
        if (syscall(SYS_capget, &header, data) < 0)
                return false;
        return (data[0].effective & need) == need;
}

int module_user_switch(uid_t uid) {
        struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
        struct __user_cap_data_struct none[2] = {};

        if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
                return -1;
        /* From root the switch drops every capability; from the hub's uid with ambient ones it does not. */
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
                return -1;
        if (syscall(SYS_capset, &header, none) < 0)
                return -1;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -1;
        return 0;
}
