/* What every edgehub daemon does before its Manager exists */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "proto/runtime/daemon.h"
#include "proto/runtime/log.h"
#include "proto/util/cleanup.h"


static void help(const char *description) {
        printf("%s --config FILE\n\n"
               "%s\n\n"
               "  -h --help           Show this help\n"
               "     --version        Show the version\n"
               "  -c --config FILE    The edgehub configuration file (required)\n",
               program_invocation_short_name, description);
}

static int parse_argv(int argc, char *argv[], const char *description, const char **ret_config) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                {}
        };
        const char *config = NULL;
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hc:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help(description);
                        return 1;
                case ARG_VERSION:
                        printf("%s %s\n", program_invocation_short_name, PROJECT_VERSION);
                        return 1;
                case 'c':
                        config = optarg;
                        break;
                default:
                        return -EBADR;
                }
        if (optind < argc) {
                fprintf(stderr, "<3>Unexpected argument '%s'; see --help\n", argv[optind]);
                return -EBADR;
        }
        if (!config) {
                fprintf(stderr, "<3>--config FILE is required; see --help\n");
                return -EBADR;
        }
        *ret_config = config;
        return 0;
}

/*
 * Issue 15's idle footprint. glibc gives each thread that allocates an
 * arena of its own (RocksDB's flush and compaction threads do), each
 * keeping freed memory; one arena is plenty for an event loop and two
 * background threads. Fixed thresholds also stop glibc from raising them
 * as large blocks come and go (RocksDB's memtable arenas, HTTP bodies), which
 * otherwise keeps such blocks in the heap for good instead of unmapping them.
 * Before any thread starts: the arena count applies to threads made later.
 */
void daemon_tune_malloc(void) {
        (void) mallopt(M_ARENA_MAX, 1);
        (void) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
        (void) mallopt(M_TRIM_THRESHOLD, 128 * 1024);
}

void daemon_trim_memory(void) {
        (void) malloc_trim(0);
}

int daemon_start(int argc, char *argv[], const char *description, Config **ret_config) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_free_ char *error = NULL, *warnings = NULL;
        const char *path = NULL;
        sigset_t mask;
        int r;

        r = parse_argv(argc, argv, description, &path);
        if (r != 0)
                return r;

        /* Before any library starts a thread (RocksDB, curl's resolver): threads inherit this mask. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(-errno, "Failed to block signals: %m");
        /* A peer closing its socket must cost an EPIPE, not the process. */
        (void) signal(SIGPIPE, SIG_IGN);
        daemon_tune_malloc();

        /* Before touching any data: a bad file is one line naming file, line and key. */
        r = config_load(path, &config, &error, &warnings);
        if (r < 0) {
                fprintf(stderr, "<3>%s\n", error ? error : "Failed to load the configuration");
                return -EBADR;
        }
        log_set_max_level(config->log_level);
        for (char *w = warnings, *nl; w && *w; w = nl ? nl + 1 : NULL) {
                nl = strchr(w, '\n');
                if (nl)
                        *nl = '\0';
                log_warning("%s", w);
        }

        *ret_config = TAKE_PTR(config);
        return 0;
}

uint64_t daemon_raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return 0;
        if (rl.rlim_cur < rl.rlim_max) {
                struct rlimit raised = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };
                if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
                        rl = raised;
        }
        return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t) rl.rlim_cur;
}

int daemon_exit_status(int r) {
        if (r == -EBADR)
                return EXIT_CONFIG;
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
