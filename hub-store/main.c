/* edgehub-hub-store: the durable message store and the upstream links */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mosquitto.h>
#include <systemd/sd-daemon.h>

#include "hub-store/manager.h"
#include "proto/cleanup.h"
#include "proto/config.h"
#include "proto/log.h"

#ifndef PROJECT_VERSION
#define PROJECT_VERSION "unknown"
#endif

static const char *arg_config;

static void help(void) {
        printf("edgehub-hub-store --config FILE\n\n"
               "Stores upstream-bound telemetry durably and forwards it to the IoT Hub.\n\n"
               "  -h --help           Show this help\n"
               "     --version        Show the version\n"
               "  -c --config FILE    The edgehub configuration file (required)\n");
}

/* 0 run, >0 exit successfully (--help), <0 error. */
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

        while ((c = getopt_long(argc, argv, "hc:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 1;
                case ARG_VERSION:
                        printf("edgehub-hub-store %s\n", PROJECT_VERSION);
                        return 1;
                case 'c':
                        arg_config = optarg;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }
        if (optind < argc) {
                fprintf(stderr, "<3>Unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        if (!arg_config) {
                fprintf(stderr, "<3>--config FILE is required\n");
                return -EINVAL;
        }
        return 0;
}

static int run(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_free_ char *error = NULL, *warnings = NULL;
        sigset_t mask;
        int r;

        r = parse_argv(argc, argv);
        if (r != 0)
                return r;

        /* Before RocksDB starts its threads: they inherit the mask, and must not die of SIGTERM mid-write. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(-errno, "Failed to block signals: %m");
        /* OpenSSL writes to sockets the peer may have closed. */
        (void) signal(SIGPIPE, SIG_IGN);

        r = config_load(arg_config, &config, &error, &warnings);
        if (r < 0) {
                fprintf(stderr, "<3>%s\n", error ? error : "invalid configuration");
                return r;
        }
        log_set_max_level(config->log_level);
        for (char *line = warnings, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                log_warning("%s", line);
        }

        mosquitto_lib_init();

        r = manager_new(&m, TAKE_PTR(config));
        if (r < 0)
                return log_error_errno(r, "Failed to set up: %m");
        r = manager_start(m);
        if (r < 0)
                return r;

        (void) sd_notifyf(false, "READY=1\nSTATUS=%" PRIu64 " message(s) queued", store_messages(m->store));
        log_info("hub-store ready");

        r = sd_event_loop(m->event);
        (void) sd_notify(false, "STOPPING=1");
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");

        log_info("hub-store stopping");
        m = manager_free(m);
        mosquitto_lib_cleanup();
        return 0;
}

int main(int argc, char *argv[]) {
        int r = run(argc, argv);

        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
