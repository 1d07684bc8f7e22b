/* edgehub-auth-cache: the device scope, persisted, and local credential checks */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "auth-cache/manager.h"
#include "proto/cleanup.h"
#include "proto/config.h"
#include "proto/log.h"

#ifndef EDGEHUB_VERSION
#define EDGEHUB_VERSION "unknown"
#endif

static const char *arg_config;

static void help(void) {
        printf("%s --config FILE\n\n"
               "Keeps the device scope of an edgehub gateway: syncs identities and keys from\n"
               "the cloud, persists them, and checks device credentials for the broker.\n\n"
               "  -h --help           Show this help\n"
               "     --version        Show the version\n"
               "  -c --config FILE    The edgehub configuration file (required)\n",
               program_invocation_short_name);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "hc:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("edgehub-auth-cache %s\n", EDGEHUB_VERSION);
                        return 0;
                case 'c':
                        arg_config = optarg;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "<3>Unexpected argument '%s'; see --help\n", argv[optind]);
                return -EINVAL;
        }
        if (!arg_config) {
                fprintf(stderr, "<3>--config FILE is required; see --help\n");
                return -EINVAL;
        }
        return 1;
}

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_free_ char *error = NULL, *warnings = NULL;
        sigset_t mask;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? -EBADR : 0;

        /* Before any library starts a thread (RocksDB, curl's resolver): they inherit this mask. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(-errno, "Failed to block signals: %m");
        /* A peer closing its socket must cost an EPIPE, not the process. */
        (void) signal(SIGPIPE, SIG_IGN);
        /* The scope store holds every device's keys: no file of ours is for other users. */
        (void) umask(0027);

        r = config_load(arg_config, &config, &error, &warnings);
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

        r = manager_new(&m, &config);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the event loop: %m");
        /* These log their own errors, naming the folder or socket. */
        r = manager_open_store(m);
        if (r < 0)
                return r;
        r = manager_listen(m);
        if (r < 0)
                return r;
        r = manager_start(m);
        if (r < 0)
                return r;

        (void) sd_notifyf(false, "READY=1\nSTATUS=Serving %zu identities", m->scope->n_items);
        r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);
        /* run() says -EBADR for a command line or configuration that can never work. */
        if (r == -EBADR)
                return EXIT_CONFIG;
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
