/* The free-space floor every store on storage.dir keeps */
#pragma once

#include <stdint.h>

/*
 * New data is refused while the file system has less than this free:
 * RocksDB needs room to flush a memtable (4 MiB) and for the tombstones of
 * deliveries, and running it into ENOSPC is its least tested path (Debian's
 * build even aborts on an assertion when its info log hits ENOSPC). The
 * message store (hub-store) and the twin store (twin-sync) share
 * storage.dir, so they share the floor.
 */
#define DISK_RESERVE_BYTES (8u << 20)

/* -ENOSPC when writing need bytes under dir would eat into the reserve; 0 otherwise, or when it cannot tell. */
int disk_reserve_check(const char *dir, uint64_t need);
