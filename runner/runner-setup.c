/* The folders edgehub-run prepares, and the files it hands to mosquitto */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proto/runtime/state-file.h"
#include "proto/store/ingest-log.h"
#include "proto/util/cleanup.h"
#include "runner/runner-setup.h"

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
 * The ingest log: the plugin, running as the broker user, appends to
 * {storage_dir}/ingest: that folder is the broker user's (0700), and
 * storage_dir lets its group through (0750) without opening the message store.
 */
int runner_ingest_dir_setup(const Config *c, const BrokerUser *u) {
        _cleanup_free_ char *dir = NULL;

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

int hub_user_lookup(const char *name, BrokerUser *ret) {
        struct passwd *pw;

        *ret = BROKER_USER_NULL;
        if (geteuid() != 0 || !name || !*name)
                return 0;
        errno = 0;
        pw = getpwnam(name);
        if (!pw && errno != 0 && errno != ENOENT && errno != ESRCH)
                return -errno;
        if (!pw) {
                /* As the package's sysusers.d line would: a system user and group, no login, no home. */
                pid_t pid = fork();
                if (pid < 0)
                        return -errno;
                if (pid == 0) {
                        execl("/usr/sbin/useradd", "useradd", "--system", "--user-group", "--no-create-home",
                              "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", "--comment",
                              "edgehub IoT Edge hub", name, (char *) NULL);
                        _exit(127);
                }
                int status;
                if (waitpid(pid, &status, 0) < 0)
                        return -errno;
                pw = getpwnam(name);
                if (!pw)
                        return -ESRCH;
        }
        if (pw->pw_uid == 0)
                return 0;
        ret->name = strdup(name);
        if (!ret->name)
                return -ENOMEM;
        ret->switch_user = true;
        ret->uid = pw->pw_uid;
        ret->gid = pw->pw_gid;
        return 0;
}

/* nftw() has no userdata: the one walk at a time edgehub-run makes. */
static struct {
        uid_t uid;
        gid_t gid;
        const char *skip; /* a subtree left alone */
        mode_t file_or;   /* bits added to regular files */
} tree_owner;

static int chown_one(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        if (tree_owner.skip && strcmp(path, tree_owner.skip) == 0)
                return FTW_SKIP_SUBTREE;
        if ((st->st_uid != tree_owner.uid || st->st_gid != tree_owner.gid) &&
            lchown(path, tree_owner.uid, tree_owner.gid) < 0)
                return -errno;
        if (type == FTW_F && tree_owner.file_or && (st->st_mode & tree_owner.file_or) != tree_owner.file_or &&
            chmod(path, (st->st_mode & 07777) | tree_owner.file_or) < 0)
                return -errno;
        return FTW_CONTINUE;
}

/* Everything under dir (dir too) owned by uid:gid, but the subtree skip; files get file_or added. */
static int chown_tree(const char *dir, uid_t uid, gid_t gid, const char *skip, mode_t file_or) {
        tree_owner.uid = uid;
        tree_owner.gid = gid;
        tree_owner.skip = skip;
        tree_owner.file_or = file_or;
        int r = nftw(dir, chown_one, 16, FTW_PHYS | FTW_MOUNT | FTW_ACTIONRETVAL);
        return r < 0 ? -errno : r > 0 ? 0 : r;
}

int runner_hub_dirs_setup(const Config *c, const BrokerUser *broker, const BrokerUser *hub) {
        _cleanup_free_ char *ingest = NULL;
        gid_t bus_gid = broker->switch_user ? broker->gid : hub->gid;
        int r;

        if (!hub->switch_user)
                return 0;
        if (asprintf(&ingest, "%s/" INGEST_DIR, c->storage_dir) < 0)
                return -ENOMEM;

        if (chown(c->runtime_dir, hub->uid, bus_gid) < 0 || chmod(c->runtime_dir, 01771) < 0)
                return -errno;

        r = chown_tree(c->storage_dir, hub->uid, hub->gid, ingest, 0);
        if (r < 0)
                return r;
        if (chown(c->storage_dir, hub->uid, bus_gid) < 0 || chmod(c->storage_dir, 0750) < 0)
                return -errno;
        if (broker->switch_user) {
                r = chown_tree(ingest, broker->uid, hub->gid, NULL, 0040);
                if (r < 0)
                        return r;
                if (chmod(ingest, 02770) < 0)
                        return -errno;
        }

        r = mkdir_parents(c->modules_dir, 0711);
        if (r < 0)
                return r;
        if (chown(c->modules_dir, hub->uid, hub->gid) < 0 || chmod(c->modules_dir, 0711) < 0)
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
