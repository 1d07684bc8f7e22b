/* What every edgehub daemon does before its Manager exists */
#pragma once

#include <stdint.h>

#include "proto/runtime/config.h"

/*
 * The fixed start of a daemon's run() (STYLE.md §6): the command line
 * (--config FILE, --help, --version), the signal mask, the configuration
 * and the log level. Returns 0 to run with *ret_config, 1 when --help or
 * --version was answered, -EBADR for a command line or configuration that
 * can never work (main() exits EXIT_CONFIG: a supervisor must not retry),
 * other negative errnos for failures.
 */
int daemon_start(int argc, char *argv[], const char *description, Config **ret_config);

/* glibc's malloc for a small footprint (daemon_start() calls it, before any thread exists). */
void daemon_tune_malloc(void);
/* Gives free heap pages back to the kernel, after a burst of one-off allocations. */
void daemon_trim_memory(void);

/*
 * Raises the soft limit on open files to the hard one, for a daemon that
 * holds many (hub-store: an upstream link per identity and the store's
 * table files). Safe because nothing in the hub uses select(): sd-event,
 * libmicrohttpd and libmosquitto's loop calls are on epoll. Returns the
 * soft limit now in force.
 */
uint64_t daemon_raise_fd_limit(void);

/* Maps run()'s result to the exit status. */
int daemon_exit_status(int r);
