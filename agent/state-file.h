/* Small state files written atomically: the last good deployment survives crashes and power loss */
#pragma once

#include <stddef.h>

/* Writes text to dir/name via a temporary file, fsync and rename (then fsyncs dir). */
int state_file_write(const char *dir, const char *name, const char *text);
/* Reads dir/name (at most max bytes). -ENOENT when absent, -EFBIG when larger. */
int state_file_read(const char *dir, const char *name, size_t max, char **ret, size_t *ret_len);
