/* hubctl: inspect and manage a running edgehub through the daemons' control sockets */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hubctl/hubctl-methods.h"
#include "hubctl/hubctl-modules.h"
#include "hubctl/hubctl-query.h"
#include "hubctl/hubctl-render.h"
#include "hubctl/hubctl-twins.h"
#include "proto/iothub/manifest.h"
#include "proto/ipc/frame.h"
#include "proto/runtime/config.h"
#include "proto/util/cleanup.h"

#define DEFAULT_CONFIG "/etc/edgehub/config.yaml"

/* Exit codes are part of the interface: scripts branch on them. */
enum {
        EXIT_OK = 0,
        EXIT_USAGE = 1,
        /* EXIT_CONFIG (2) comes from proto/runtime/config.h */
        EXIT_UNAVAILABLE = 3, /* a daemon is not running or does not answer */
        EXIT_DAEMON = 4,      /* a daemon answered with an error or an invalid reply */
        /* 5: a method call was refused or not answered (hubctl-methods.h) */
        EXIT_DENIED = 6,      /* permission denied: not root nor in access.read_group/admin_group */
};

static const char *arg_config;
static bool arg_json;
static char **arg_args; /* the command's own arguments */
static int arg_n_args;

typedef struct Daemon {
        const char *name;
        char *socket;
} Daemon;

typedef struct Context {
        Daemon hub_store;
        Daemon auth_cache;
        Daemon twin_sync;
        Daemon agent;
        char *failures[2]; /* messages for stderr, printed after the output */
        size_t n_failures;
        int exit_code;
} Context;

static void context_deinit(Context *c) {
        free(c->hub_store.socket);
        free(c->auth_cache.socket);
        free(c->twin_sync.socket);
        free(c->agent.socket);
        for (size_t i = 0; i < c->n_failures; i++)
                free(c->failures[i]);
}

static void context_fail(Context *c, int exit_code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void context_fail(Context *c, int exit_code, const char *fmt, ...) {
        va_list ap;
        char *m;

        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                m = NULL;
        va_end(ap);
        if (m && c->n_failures < ELEMENTSOF(c->failures))
                c->failures[c->n_failures++] = m;
        else
                free(m);
        if (c->exit_code == EXIT_OK || exit_code == EXIT_UNAVAILABLE)
                c->exit_code = exit_code;
}

/* Sets *ret, or records the failure in c and leaves *ret NULL. */
static void context_query_argument(Context *c, const Daemon *d, const char *command, const char *argument,
                                   json_t **ret) {
        _cleanup_free_ char *error = NULL;
        int r;

        *ret = NULL;
        r = daemon_query_argument(d->socket, command, argument, HUBCTL_TIMEOUT_USEC, ret, &error);
        switch (r) {
        case 0:
                break;
        case -ENOENT:
                context_fail(c, EXIT_UNAVAILABLE, "hubctl: %s is not running (no socket at %s)", d->name, d->socket);
                break;
        case -ECONNREFUSED:
                context_fail(c, EXIT_UNAVAILABLE, "hubctl: %s is not running (%s refuses connections)", d->name,
                             d->socket);
                break;
        case -EACCES:
        case -EPERM:
                /* With a reply: the daemon refused us (SO_PEERCRED); without: the socket file did. */
                if (error)
                        context_fail(c, EXIT_DENIED, "hubctl: %s", error);
                else
                        context_fail(c, EXIT_DENIED, "hubctl: permission denied: cannot connect to %s at %s", d->name,
                                     d->socket);
                break;
        case -ETIMEDOUT:
                context_fail(c, EXIT_UNAVAILABLE, "hubctl: %s did not answer within %us", d->name,
                             HUBCTL_TIMEOUT_USEC / 1000000u);
                break;
        case -ECONNRESET:
        case -EPIPE:
                context_fail(c, EXIT_UNAVAILABLE, "hubctl: %s closed the connection without replying", d->name);
                break;
        case -EBADMSG:
                context_fail(c, EXIT_DAEMON, "hubctl: %s sent an invalid reply to '%s': %s", d->name, command,
                             error ?: "malformed frame");
                break;
        default:
                context_fail(c, EXIT_DAEMON, "hubctl: %s failed '%s': %s (%s)", d->name, command,
                             error ?: "no details", strerror(-r));
                break;
        }
}

static void context_query(Context *c, const Daemon *d, const char *command, json_t **ret) {
        context_query_argument(c, d, command, NULL, ret);
}

static void context_bad_reply(Context *c, const Daemon *d, const char *command, const json_error_t *e) {
        context_fail(c, EXIT_DAEMON, "hubctl: %s sent an unexpected reply to '%s': %s", d->name, command, e->text);
}

static int print_json(json_t *j) {
        if (json_dumpf(j, stdout, JSON_INDENT(2)) < 0 || fputc('\n', stdout) == EOF)
                return -EIO;
        return 0;
}

static void cmd_status(Context *c) {
        json_auto_t *hs = NULL, *ac = NULL;
        json_error_t e = {};
        int r;

        context_query(c, &c->hub_store, "status", &hs);
        context_query(c, &c->auth_cache, "status", &ac);

        /* Check each reply on its own so the daemon at fault is named; --json passes on only what checks out. */
        if (hs && render_status(NULL, hs, NULL, 0, &e) == -EBADMSG) {
                context_bad_reply(c, &c->hub_store, "status", &e);
                hs = (json_decref(hs), NULL);
        }
        if (ac && render_status(NULL, NULL, ac, 0, &e) == -EBADMSG) {
                context_bad_reply(c, &c->auth_cache, "status", &e);
                ac = (json_decref(ac), NULL);
        }
        if (!hs && !ac)
                return;

        if (arg_json) {
                json_auto_t *out = json_pack("{s:O?, s:O?}", "hub_store", hs, "auth_cache", ac);
                r = out ? print_json(out) : -ENOMEM;
        } else
                r = render_status(stdout, hs, ac, realtime_msec(), &e);
        if (r < 0)
                context_fail(c, EXIT_DAEMON, "hubctl: failed to write the output");
}

static void cmd_queues(Context *c) {
        json_auto_t *q = NULL;
        json_error_t e = {};
        int r;

        context_query(c, &c->hub_store, "queues", &q);
        if (!q)
                return;
        if (render_queues(NULL, q, &e) == -EBADMSG) {
                context_bad_reply(c, &c->hub_store, "queues", &e);
                return;
        }
        r = arg_json ? print_json(q) : render_queues(stdout, q, &e);
        if (r < 0)
                context_fail(c, EXIT_DAEMON, "hubctl: failed to write the output");
}

static void cmd_devices(Context *c) {
        json_auto_t *hs = NULL, *ac = NULL, *merged = NULL;
        json_error_t e = {};
        int r;

        context_query(c, &c->hub_store, "devices", &hs);
        context_query(c, &c->auth_cache, "devices", &ac);
        if (!hs && !ac)
                return;

        if (ac && devices_merge(NULL, ac, &merged, &e) == -EBADMSG) {
                context_bad_reply(c, &c->auth_cache, "devices", &e);
                ac = (json_decref(ac), NULL);
        }
        merged = (json_decref(merged), NULL);
        if (hs && devices_merge(hs, NULL, &merged, &e) == -EBADMSG) {
                context_bad_reply(c, &c->hub_store, "devices", &e);
                hs = (json_decref(hs), NULL);
        }
        merged = (json_decref(merged), NULL);
        if (!hs && !ac)
                return;
        if (devices_merge(hs, ac, &merged, &e) < 0) {
                context_fail(c, EXIT_DAEMON, "hubctl: out of memory");
                return;
        }

        r = arg_json ? print_json(merged) : render_devices(stdout, merged, &e);
        if (r < 0)
                context_fail(c, EXIT_DAEMON, "hubctl: failed to write the output");
}

static void cmd_sync(Context *c) {
        json_auto_t *s = NULL;
        json_error_t e = {};
        int r;

        context_query(c, &c->auth_cache, "sync", &s);
        if (!s)
                return;
        if (render_sync(NULL, s, &e) == -EBADMSG) {
                context_bad_reply(c, &c->auth_cache, "sync", &e);
                return;
        }
        r = arg_json ? print_json(s) : render_sync(stdout, s, &e);
        if (r < 0)
                context_fail(c, EXIT_DAEMON, "hubctl: failed to write the output");
}

static void cmd_routes(Context *c) {
        json_auto_t *q = NULL;
        json_error_t e = {};
        int r;

        context_query(c, &c->hub_store, "routes", &q);
        if (!q)
                return;
        if (render_routes(NULL, q, &e) == -EBADMSG) {
                context_bad_reply(c, &c->hub_store, "routes", &e);
                return;
        }
        r = arg_json ? print_json(q) : render_routes(stdout, q, &e);
        if (r < 0)
                context_fail(c, EXIT_DAEMON, "hubctl: failed to write the output");
}

/* twins: the list; twins show ID: one twin in full. */
static void cmd_twins(Context *c) {
        json_auto_t *t = NULL;
        json_error_t e = {};
        bool show = arg_n_args == 2 && strcmp(arg_args[0], "show") == 0;
        int r;

        if (arg_n_args != 0 && !show) {
                context_fail(c, EXIT_USAGE, "hubctl: usage: hubctl twins [show IDENTITY]");
                return;
        }
        context_query_argument(c, &c->twin_sync, show ? "twin" : "twins", show ? arg_args[1] : NULL, &t);
        if (!t)
                return;
        int (*render)(FILE *f, json_t *reply, json_error_t *error) = show ? render_twin : render_twins;
        if (render(NULL, t, &e) == -EBADMSG) {
                context_bad_reply(c, &c->twin_sync, show ? "twin" : "twins", &e);
                return;
        }
        r = arg_json ? print_json(t) : render(stdout, t, &e);
        if (r < 0)
                context_fail(c, EXIT_DAEMON, "hubctl: failed to write the output");
}

static void cmd_agent(Context *c, const char *command, const char *argument,
                      int (*render)(FILE *f, json_t *reply, json_error_t *error)) {
        json_auto_t *t = NULL;
        json_error_t e = {};

        context_query_argument(c, &c->agent, command, argument, &t);
        if (!t)
                return;
        if (render(NULL, t, &e) == -EBADMSG) {
                context_bad_reply(c, &c->agent, command, &e);
                return;
        }
        if ((arg_json ? print_json(t) : render(stdout, t, &e)) < 0)
                context_fail(c, EXIT_DAEMON, "hubctl: failed to write the output");
}

static void cmd_modules(Context *c) {
        cmd_agent(c, "modules", NULL, render_modules);
}

static void cmd_deployment(Context *c) {
        cmd_agent(c, "deployment", NULL, render_deployment);
}

/* deploy FILE: the agent checks it as it checks the twin's; a refusal says why (exit 4). */
static void cmd_deploy(Context *c) {
        _cleanup_free_ char *text = NULL;
        FILE *f;
        size_t len;

        if (arg_n_args != 1) {
                context_fail(c, EXIT_USAGE, "hubctl: usage: hubctl deploy FILE");
                return;
        }
        f = strcmp(arg_args[0], "-") == 0 ? stdin : fopen(arg_args[0], "re");
        if (!f) {
                context_fail(c, EXIT_USAGE, "hubctl: cannot open '%s': %s", arg_args[0], strerror(errno));
                return;
        }
        text = malloc(MANIFEST_MAX + 2);
        len = text ? fread(text, 1, MANIFEST_MAX + 1, f) : 0;
        bool failed = text && ferror(f);
        if (f != stdin)
                fclose(f);
        if (!text || failed || len > MANIFEST_MAX || memchr(text, 0, len)) {
                context_fail(c, EXIT_USAGE, "hubctl: cannot read '%s': %s", arg_args[0],
                             !text ? "out of memory" : failed ? "read error" : len > MANIFEST_MAX ? "too large" : "contains NUL bytes");
                return;
        }
        text[len] = 0;
        cmd_agent(c, "deploy", text, render_deployment);
}

static const struct {
        const char *name;
        void (*run)(Context *c);
        const char *help;
} commands[] = {
        { "status", cmd_status, "Uplink, connected devices, store fill, scope sync" },
        { "queues", cmd_queues, "Store queues per endpoint and priority" },
        { "devices", cmd_devices, "Identities in scope, connected or queued" },
        { "sync", cmd_sync, "Ask auth-cache to refresh the device scope now" },
        { "routes", cmd_routes, "Routes in force and what each matched" },
        { "twins", cmd_twins, "Twins with versions and pending reported patches; 'twins show ID' for one" },
        { "modules", cmd_modules, "Modules the agent runs: status, pid, restarts, last exit" },
        { "deployment", cmd_deployment, "The applied deployment, its version, why the last one was refused" },
        { "deploy", cmd_deploy, "Apply a deployment manifest from FILE ('-': stdin), checked as the twin's" },
};

static void help(void) {
        printf("%s [OPTIONS...] COMMAND\n\n"
               "Inspect and manage a running edgehub.\n\n"
               "Commands:\n",
               program_invocation_short_name);
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                printf("  %-11s %s\n", commands[i].name, commands[i].help);
        printf("  %-11s %s\n", "methods", "Call a direct method: methods invoke TARGET METHOD (see methods --help)");
        printf("\nOptions:\n"
               "  -h --help         Show this help\n"
               "     --version      Show the version\n"
               "  -c --config FILE  Configuration file (default: $EDGEHUB_CONFIG, else %s)\n"
               "  -j --json         Print the daemons' replies as one JSON object\n"
               "\nExit status: 0 ok, 1 usage, 2 configuration, 3 a daemon is not running or does not\n"
               "answer, 4 a daemon replied with an error or an invalid reply, 5 a method call failed,\n"
               "6 permission denied (see access.read_group and access.admin_group).\n",
               DEFAULT_CONFIG);
}

static int parse_argv(int argc, char *argv[]) {
        enum { ARG_VERSION = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                { "config", required_argument, NULL, 'c' },
                { "json", no_argument, NULL, 'j' },
                {},
        };
        int o;

        while ((o = getopt_long(argc, argv, "hc:j", options, NULL)) >= 0)
                switch (o) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("hubctl %s\n", PROJECT_VERSION);
                        return 0;
                case 'c':
                        arg_config = optarg;
                        break;
                case 'j':
                        arg_json = true;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        return -EINVAL;
                }

        if (optind >= argc) {
                fprintf(stderr, "hubctl: missing command; see --help\n");
                return -EINVAL;
        }
        arg_args = argv + optind + 1;
        arg_n_args = argc - optind - 1;
        /* Only twins ("show ID") and deploy (FILE) take arguments; they check them themselves. */
        if (optind + 1 < argc && strcmp(argv[optind], "twins") != 0 && strcmp(argv[optind], "deploy") != 0) {
                fprintf(stderr, "hubctl: unexpected argument '%s' after '%s'\n", argv[optind + 1], argv[optind]);
                return -EINVAL;
        }
        return 1;
}

/*
 * The configuration, for runtime_dir. It holds keys (root:edgehub 0640), so a
 * member of access.read_group/admin_group may not read it: then the default
 * runtime_dir, where the packaged hub puts its sockets, and the daemons
 * decide by SO_PEERCRED what that user may do.
 */
static const Config unreadable_config = { .runtime_dir = (char *) "/run/edgehub" };

static int load_config(const char *path, Config **ret, const Config **ret_use) {
        _cleanup_free_ char *error = NULL, *warnings = NULL;

        /* Unknown keys are the daemons' business to warn about: hubctl reads runtime_dir only. */
        int r = config_load(path, ret, &error, &warnings);
        if (r == -EACCES) {
                *ret_use = &unreadable_config;
                return 0;
        }
        if (r < 0) {
                fprintf(stderr, "hubctl: %s\n", error ?: strerror(-r));
                return r;
        }
        *ret_use = *ret;
        return 0;
}

static int load_sockets(Context *c) {
        _cleanup_(config_freep) Config *owned = NULL;
        const Config *config = NULL;
        const char *path = arg_config ?: getenv("EDGEHUB_CONFIG") ?: DEFAULT_CONFIG;
        int r;

        r = load_config(path, &owned, &config);
        if (r < 0)
                return r;
        c->hub_store.name = "hub-store";
        c->auth_cache.name = "auth-cache";
        c->twin_sync.name = "twin-sync";
        c->agent.name = "agent";
        r = config_socket_path(config, SOCKET_HUB_STORE, &c->hub_store.socket);
        if (r >= 0)
                r = config_socket_path(config, SOCKET_AUTH_CACHE, &c->auth_cache.socket);
        if (r >= 0)
                r = config_socket_path(config, SOCKET_TWIN_SYNC, &c->twin_sync.socket);
        if (r >= 0)
                r = config_socket_path(config, SOCKET_AGENT, &c->agent.socket);
        if (r < 0) {
                fprintf(stderr, "hubctl: bad runtime_dir in %s: %s\n", path, strerror(-r));
                return r;
        }
        return 0;
}

/*
 * The index of the command among argv (-c/--config take a value), or -1.
 * "methods" has options of its own: hubctl's own parsing stops at it.
 */
static int command_index(int argc, char *argv[]) {
        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--") == 0)
                        return i + 1 < argc ? i + 1 : -1;
                if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
                        i++;
                        continue;
                }
                if (argv[i][0] != '-')
                        return i;
        }
        return -1;
}

static int run_methods(int argc, char *argv[]) {
        _cleanup_(config_freep) Config *owned = NULL;
        _cleanup_free_ char *socket = NULL;
        const Config *config = NULL;
        const char *path = arg_config ?: getenv("EDGEHUB_CONFIG") ?: DEFAULT_CONFIG;
        int r;

        r = load_config(path, &owned, &config);
        if (r < 0)
                return EXIT_CONFIG;
        r = config_socket_path(config, SOCKET_METHOD_ROUTER, &socket);
        if (r < 0) {
                fprintf(stderr, "hubctl: bad runtime_dir in %s: %s\n", path, strerror(-r));
                return EXIT_CONFIG;
        }
        return hubctl_methods(socket, arg_json, argc, argv);
}

int main(int argc, char *argv[]) {
        _cleanup_(context_deinit) Context c = {};
        const char *name;
        int r;

        int cmd = command_index(argc, argv);
        bool methods = cmd > 0 && strcmp(argv[cmd], "methods") == 0;
        r = parse_argv(methods ? cmd + 1 : argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_OK;
        if (methods)
                return run_methods(argc - cmd, argv + cmd);

        name = argv[optind];
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                if (strcmp(commands[i].name, name) != 0)
                        continue;
                if (load_sockets(&c) < 0)
                        return EXIT_CONFIG;
                commands[i].run(&c);
                (void) fflush(stdout);
                for (size_t k = 0; k < c.n_failures; k++)
                        fprintf(stderr, "%s\n", c.failures[k]);
                return c.exit_code;
        }

        fprintf(stderr, "hubctl: unknown command '%s'; see --help\n", name);
        return EXIT_USAGE;
}
