/* edgehub-run: edgehub's processes in the foreground, for development, tests and the demo */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/runtime/config.h"
#include "proto/runtime/log.h"
#include "proto/runtime/state-file.h"
#include "proto/store/ingest-log.h"
#include "proto/util/cleanup.h"
#include "runner/runner-broker-conf.h"
#include "runner/runner-manager.h"
#include "runner/runner-paths.h"
#include "runner/runner-setup.h"

/* Exit status: 0 stopped by a signal, 1 failure, 2 configuration error (ours, or a daemon exited with 2). */

static const char *arg_config;
static bool arg_no_broker;
static bool arg_print_broker_config;

static void help(void) {
        printf("%s --config FILE [OPTIONS...]\n\n"
               "Run auth-cache, hub-store, method-router, twin-sync, agent and mosquitto with the edgehub plugin in the foreground,\n"
               "restarting them when they exit; stop them all on SIGTERM or SIGINT.\n\n"
               "  -h --help                 Show this help\n"
               "     --version              Show the version\n"
               "  -c --config FILE          The edgehub configuration (required)\n"
               "     --no-broker            Run the daemons only, without mosquitto\n"
               "     --print-broker-config  Print the generated mosquitto.conf and exit\n\n"
               "Programs are looked up in runner.libexec_dir, else next to this executable, else\n"
               "where a meson build tree puts them (../auth-cache/, ../hub-store/, ../twin-sync/, ../method-router/, ../agent/, ../broker-plugin/).\n",
               program_invocation_short_name);
}

/* 1: go on; 0: done (help, version); <0: usage error. */
static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100, ARG_NO_BROKER, ARG_PRINT_BROKER_CONFIG };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                { "no-broker", no_argument, NULL, ARG_NO_BROKER },
                { "print-broker-config", no_argument, NULL, ARG_PRINT_BROKER_CONFIG },
                {},
        };
        int o;

        while ((o = getopt_long(argc, argv, "hc:", options, NULL)) >= 0)
                switch (o) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("edgehub-run %s\n", PROJECT_VERSION);
                        return 0;
                case 'c':
                        arg_config = optarg;
                        break;
                case ARG_NO_BROKER:
                        arg_no_broker = true;
                        break;
                case ARG_PRINT_BROKER_CONFIG:
                        arg_print_broker_config = true;
                        break;
                default:
                        return -EINVAL;
                }

        if (optind < argc) {
                fprintf(stderr, "edgehub-run: unexpected argument '%s'\n", argv[optind]);
                return -EINVAL;
        }
        if (!arg_config) {
                fprintf(stderr, "edgehub-run: --config FILE is required\n");
                return -EINVAL;
        }
        return 1;
}

/* The key copy must not outlive the runner. */
static void unlink_freep(char **path) {
        if (*path) {
                (void) unlink(*path);
                free(*path);
        }
}

static void print_lines(int level, const char *text) {
        _cleanup_free_ char *copy = text ? strdup(text) : NULL;
        char *save = NULL;

        if (!copy)
                return;
        for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
                fprintf(stderr, "<%d>%s\n", level, l);
}

/*
 * mosquitto reads the certificate and key only after its user switch; the
 * originals may be readable by root alone, so it gets copies it owns.
 */
static int install_tls_copies(const Config *c, const BrokerUser *u, char **ret_cert, char **ret_key) {
        _cleanup_free_ char *cert = NULL, *key = NULL;
        int r;

        *ret_cert = *ret_key = NULL;
        if (c->tls_port == 0 || !u->switch_user)
                return 0;
        if (asprintf(&cert, "%s/broker-cert.pem", c->runtime_dir) < 0 ||
            asprintf(&key, "%s/broker-key.pem", c->runtime_dir) < 0)
                return -ENOMEM;
        r = copy_file_atomic(c->tls_cert_file, cert, 0644, u->uid, u->gid);
        if (r < 0)
                return log_error_errno(r, "Failed to copy '%s' for mosquitto: %m", c->tls_cert_file);
        r = copy_file_atomic(c->tls_key_file, key, 0600, u->uid, u->gid);
        if (r < 0)
                return log_error_errno(r, "Failed to copy '%s' for mosquitto: %m", c->tls_key_file);
        *ret_cert = TAKE_PTR(cert);
        *ret_key = TAKE_PTR(key);
        return 0;
}

static int broker_conf_text(const Config *c, const char *config_path, const RunnerPaths *paths,
                            const BrokerUser *u, const char *cert, const char *key, char **ret) {
        _cleanup_free_ char *error = NULL;
        const BrokerConf b = {
                .config = c,
                .config_path = config_path,
                .plugin_path = paths->plugin,
                .user = u->name,
                .cert_file = cert,
                .key_file = key,
        };
        int r;

        r = broker_conf_format(&b, ret, &error);
        if (r < 0 && error)
                return log_error_errno(r, "%s", error);
        if (r < 0)
                return log_error_errno(r, "Failed to generate the mosquitto configuration: %m");
        return 0;
}

static void warn_unreadable(const BrokerUser *u, const char *what, const char *path) {
        if (u->switch_user && !file_readable_by(path, u->uid, u->gid))
                log_warning("user '%s' cannot read %s '%s': make it and its folders readable by group '%s'",
                            u->name, what, path, u->name);
}

/* The runtime and storage folders, the ingest log, and the hub's user, who gets them. */
static int prepare_hub(const Config *config, const char *config_path, const BrokerUser *user, BrokerUser *hub_user) {
        int r;

        r = runner_dirs_setup(config, user);
        if (r < 0)
                return log_error_errno(r, "Failed to prepare '%s' and '%s': %m", config->runtime_dir,
                                       config->storage_dir);
        r = runner_ingest_dir_setup(config, user);
        if (r < 0)
                return log_error_errno(r, "Failed to prepare '%s/" INGEST_DIR "': %m", config->storage_dir);

        /* Every daemon runs as the hub's user, never as root: a module or a device that found a way in stays there. */
        r = hub_user_lookup(config->runner_user, hub_user);
        if (r < 0)
                return log_error_errno(r, "Failed to look up or create user '%s': %m", config->runner_user);
        r = runner_hub_dirs_setup(config, user, hub_user);
        if (r < 0)
                return log_error_errno(r, "Failed to hand '%s', '%s' and '%s' to user '%s': %m", config->runtime_dir,
                                       config->storage_dir, config->modules_dir, hub_user->name);
        if (hub_user->switch_user) {
                warn_unreadable(hub_user, "the edgehub configuration", config_path);
                if (config->tls_key_file && config->methods_port != 0)
                        warn_unreadable(hub_user, "the TLS key (method-router's HTTPS)", config->tls_key_file);
                if (config->upstream_ca_file)
                        warn_unreadable(hub_user, "the upstream CA", config->upstream_ca_file);
        }

        return 0;
}

/*
 * mosquitto's side: the TLS files and the configuration as the broker's user
 * may read them, and its mosquitto.conf. Each *ret_* is set as its file is
 * made, even if a later step fails: the caller removes them when it exits.
 */
static int prepare_broker(const Config *config, const char *config_path, const RunnerPaths *paths,
                          const BrokerUser *user, char **ret_cert, char **ret_key, char **ret_plugin_config,
                          char **ret_conf_path) {
        _cleanup_free_ char *conf = NULL;
        int r;

        r = install_tls_copies(config, user, ret_cert, ret_key);
        if (r < 0)
                return r;
        /*
         * The plugin reads the configuration as the broker's user, but it
         * holds the $edgeHub key: the original stays readable by root and
         * the hub's group only (0640, as /etc/edgehub/config.yaml), the
         * broker gets its own copy.
         */
        if (user->switch_user) {
                if (asprintf(ret_plugin_config, "%s/plugin-config.yaml", config->runtime_dir) < 0) {
                        *ret_plugin_config = NULL;
                        return log_error_errno(-ENOMEM, "Out of memory");
                }
                r = copy_file_atomic(config_path, *ret_plugin_config, 0600, user->uid, user->gid);
                if (r < 0)
                        return log_error_errno(r, "Failed to copy '%s' for the plugin: %m", config_path);
        }
        r = broker_conf_text(config, *ret_plugin_config ?: config_path, paths, user, *ret_cert, *ret_key, &conf);
        if (r < 0)
                return r;
        if (asprintf(ret_conf_path, "%s/mosquitto.conf", config->runtime_dir) < 0) {
                *ret_conf_path = NULL;
                return log_error_errno(-ENOMEM, "Out of memory");
        }
        r = write_file_atomic(*ret_conf_path, conf, strlen(conf), 0640, user->switch_user ? user->uid : (uid_t) -1,
                              user->gid);
        if (r < 0)
                return log_error_errno(r, "Failed to write '%s': %m", *ret_conf_path);
        warn_unreadable(user, "its configuration", *ret_conf_path);
        warn_unreadable(user, "the plugin", paths->plugin);
        if (!paths->tls_shim)
                log_warning("edgehub-tls-shim.so is not beside the plugin '%s': devices with X.509 "
                            "certificates cannot connect", paths->plugin);
        return 0;
}

static int run(int argc, char *argv[]) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_(runner_paths_deinit) RunnerPaths paths = RUNNER_PATHS_NULL;
        _cleanup_(broker_user_deinit) BrokerUser user = BROKER_USER_NULL, hub_user = BROKER_USER_NULL;
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_free_ char *error = NULL, *warnings = NULL, *config_path = NULL, *exe_dir = NULL,
                            *conf = NULL, *conf_path = NULL;
        _cleanup_(unlink_freep) char *cert = NULL, *key = NULL, *plugin_config = NULL;
        bool broker = !arg_no_broker || arg_print_broker_config;
        sigset_t mask;
        int r;

        /* Before anything else: signals arrive through sd-event, children through SIGCHLD. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");

        r = config_load(arg_config, &config, &error, &warnings);
        if (r < 0) {
                fprintf(stderr, "<3>%s\n", error ?: strerror(-r));
                return EXIT_CONFIG;
        }
        print_lines(LOG_WARNING, warnings);
        log_set_max_level(config->log_level);

        /* The daemons and the plugin get the same file, whatever our working folder. */
        config_path = realpath(arg_config, NULL);
        if (!config_path)
                return log_error_errno(errno, "Failed to resolve '%s': %m", arg_config);

        r = self_exe_dir(&exe_dir);
        if (r < 0)
                return log_error_errno(r, "Failed to find our own executable: %m");
        error = (free(error), NULL);
        r = runner_paths_resolve(config, exe_dir, !arg_print_broker_config, broker, &paths, &error);
        if (r < 0 && error)
                return log_error_errno(r, "%s", error);
        if (r < 0)
                return log_error_errno(r, "Failed to find the programs to run: %m");

        r = broker_user_lookup(&user);
        if (r < 0)
                return log_error_errno(r, "Failed to look up user 'mosquitto': %m");

        if (arg_print_broker_config) {
                /* For packaging: the files as configured, mosquitto drops to "user" itself there. */
                r = broker_conf_text(config, config_path, &paths, &user, NULL, NULL, &conf);
                if (r < 0)
                        return r;
                fputs(conf, stdout);
                return fflush(stdout) == 0 ? 0 : -EIO;
        }

        r = prepare_hub(config, config_path, &user, &hub_user);
        if (r < 0)
                return r;

        if (broker) {
                r = prepare_broker(config, config_path, &paths, &user, &cert, &key, &plugin_config, &conf_path);
                if (r < 0)
                        return r;
        }

        const ManagerSpec spec = {
                .config_path = config_path,
                .runtime_dir = config->runtime_dir,
                .paths = &paths,
                .broker_user = &user,
                .hub_user = &hub_user,
                .broker_conf_path = broker ? conf_path : NULL,
        };
        r = manager_new(&m, &spec);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the supervisor: %m");

        r = manager_run(m);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return r;
}

int main(int argc, char *argv[]) {
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        r = run(argc, argv);
        return r < 0 ? EXIT_FAILURE : r;
}
