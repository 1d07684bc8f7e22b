/* The free-space floor every store on storage.dir keeps */
#include <errno.h>
#include <sys/statvfs.h>

#include "proto/runtime/disk-reserve.h"

int disk_reserve_check(const char *dir, uint64_t need) {
        struct statvfs v;

        /* Cannot tell: RocksDB will say. */
        if (statvfs(dir, &v) < 0)
                return 0;
        uint64_t avail = (uint64_t) v.f_bavail * v.f_frsize;
        return avail < DISK_RESERVE_BYTES + need ? -ENOSPC : 0;
}
