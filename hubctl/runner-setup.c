/* The folders edgehub-run prepares, and the files it hands to mosquitto */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto/cleanup.h"
#include "proto/state-file.h"
#include "proto/ingest-log.h"
#include "hubctl/runner-setup.h"

#define COPY_MAX (1024u * 1024u)

int broker_user_lookup(BrokerUser *ret) {
        struct passwd *pw;
        char *name;

        errno = 0;
        pw = getpwnam("mosquitto");
        if (!pw && errno != 0 && errno != ENOENT && errno != ESRCH)
                return -errno;

        name = strdup(pw ? "mosquitto" : "root");
        if (!name)
                return -ENOMEM;
        *ret = (BrokerUser){
                .switch_user = pw && geteuid() == 0 && pw->pw_uid != 0,
                .uid = pw ? pw->pw_uid : (uid_t) -1,
                .gid = pw ? pw->pw_gid : (gid_t) -1,
                .name = name,
        };
        return 0;
}

void broker_user_deinit(BrokerUser *u) {
        free(u->name);
        *u = BROKER_USER_NULL;
}

int runner_dirs_setup(const Config *c, const BrokerUser *u) {
        int r;

        r = mkdir_parents(c->storage_dir, 0750);
        if (r < 0)
                return r;
        r = mkdir_parents(c->runtime_dir, 0750);
        if (r < 0)
                return r;
        if (!u->switch_user)
                return 0;
        if (chown(c->runtime_dir, u->uid, u->gid) < 0)
                return -errno;
        if (chmod(c->runtime_dir, 02750) < 0)
                return -errno;
        return 0;
}

/*
 * storage.ingest: log — the plugin, running as the broker user, appends to
 * {storage_dir}/ingest: that folder is the broker user's (0700), and
 * storage_dir lets its group through (0750) without opening the message store.
 */
int runner_ingest_dir_setup(const Config *c, const BrokerUser *u) {
        _cleanup_free_ char *dir = NULL;

        if (c->ingest != INGEST_LOG)
                return 0;
        if (asprintf(&dir, "%s/" INGEST_DIR, c->storage_dir) < 0)
                return -ENOMEM;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (!u->switch_user)
                return 0;
        if (chown(dir, u->uid, u->gid) < 0 || chmod(dir, 0700) < 0)
                return -errno;
        if (chown(c->storage_dir, (uid_t) -1, u->gid) < 0 || chmod(c->storage_dir, 0750) < 0)
                return -errno;
        return 0;
}

int copy_file_atomic(const char *src, const char *dst, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_close_ int fd = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;

        if (fd < 0)
                return -errno;
        buf = malloc(COPY_MAX);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + len, COPY_MAX - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len == COPY_MAX)
                        return -EFBIG;
        }
        return write_file_atomic(dst, buf, len, mode, uid, gid);
}

/* The permission bits that apply to uid/gid, shifted down to the "other" position. */
static mode_t mode_for(const struct stat *st, uid_t uid, gid_t gid) {
        if (st->st_uid == uid)
                return (st->st_mode >> 6) & 7;
        if (st->st_gid == gid)
                return (st->st_mode >> 3) & 7;
        return st->st_mode & 7;
}

bool file_readable_by(const char *path, uid_t uid, gid_t gid) {
        _cleanup_free_ char *p = realpath(path, NULL);
        struct stat st;

        if (!p)
                return false;
        for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
                *s = '\0';
                bool ok = stat(p, &st) >= 0 && (mode_for(&st, uid, gid) & S_IXOTH);
                *s = '/';
                if (!ok)
                        return false;
        }
        return stat(p, &st) >= 0 && (mode_for(&st, uid, gid) & S_IROTH);
}
