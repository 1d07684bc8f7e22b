/* A daemon's state on disk: small files written atomically, so what it decided survives crashes and power loss */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/*
 * Writes data to path through a temporary file and rename(), checking write,
 * fsync and close first; uid/gid (uid_t)-1 keep the caller's.
 */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, uid_t uid, gid_t gid);
/* Writes text to dir/name like write_file_atomic() (mode 0640), then fsyncs dir. */
int state_file_write(const char *dir, const char *name, const char *text);
/* Reads dir/name (at most max bytes). -ENOENT when absent, -EFBIG when larger. */
int state_file_read(const char *dir, const char *name, size_t max, char **ret, size_t *ret_len);

/*
 * A daemon's own place under storage.dir: "{storage_dir}/{name}" in *ret,
 * with storage.dir created (0750) if it is missing; the caller creates or
 * opens the place itself. Logs what went wrong.
 */
int state_dir_prepare(const char *storage_dir, const char *name, char **ret);

/* mkdir -p with mode for the folders created. */
int mkdir_parents(const char *path, mode_t mode);
