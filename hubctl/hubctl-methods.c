/* hubctl methods: call a direct method on a local device or module through method-router */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hubctl/hubctl-methods.h"
#include "hubctl/hubctl-query.h"
#include "proto/iothub/method-request.h"
#include "proto/ipc/frame.h"
#include "proto/util/cleanup.h"

#define POLL_INTERVAL_NSEC (50u * 1000u * 1000u)
/* Beyond the call's own deadlines: the daemon ends every call by then. */
#define POLL_GRACE_USEC (10u * 1000u * 1000u)

static void methods_help(void) {
        printf("%s [OPTIONS...] methods invoke TARGET METHOD [--payload JSON] [--timeout S] [--connect-timeout S]\n\n"
               "Call direct method METHOD on TARGET ({deviceId} or {deviceId}/{moduleId}), a device or\n"
               "module connected to this gateway, and print its answer ({\"status\",\"payload\"} with --json).\n\n"
               "  --payload JSON          The method's payload (default: null)\n"
               "  --timeout S             Seconds to wait for the answer, 5..300 (default 30)\n"
               "  --connect-timeout S     Seconds to wait for TARGET to connect, 0..300 (default 0)\n"
               "\nExit status: 0 answered (whatever the device's status), 5 not answered: TARGET is\n"
               "unknown, not connected or silent, or the request was refused (the reason on stderr).\n",
               program_invocation_short_name);
}

/* The IoT Hub request body; -EINVAL with a message on stderr. */
static int build_body(const char *name, const char *payload_text, long timeout, long connect_timeout,
                      char **ret) {
        json_auto_t *body = NULL;
        json_t *payload;

        if (payload_text) {
                payload = json_loads(payload_text, JSON_DECODE_ANY, NULL);
                if (!payload) {
                        fprintf(stderr, "hubctl: --payload is not JSON: %s\n", payload_text);
                        return -EINVAL;
                }
        } else
                payload = json_null();
        body = json_pack("{s:s, s:o, s:I, s:I}", "methodName", name, "payload", payload, "responseTimeoutInSeconds",
                         (json_int_t) timeout, "connectTimeoutInSeconds", (json_int_t) connect_timeout);
        if (!body) {
                fprintf(stderr, "hubctl: the method name is not UTF-8 text\n");
                return -EINVAL;
        }
        *ret = json_dumps(body, JSON_COMPACT);
        return *ret ? 0 : -ENOMEM;
}

static int parse_seconds(const char *s, const char *what, long *ret) {
        char *end;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end || v < 0 || v > 100000) {
                fprintf(stderr, "hubctl: %s must be a number of seconds, not '%s'\n", what, s);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

static int query_failed(int r, const char *error, const char *socket) {
        if (r == -ENOENT || r == -ECONNREFUSED) {
                fprintf(stderr, "hubctl: method-router is not running (no socket at %s)\n", socket);
                return HUBCTL_EXIT_UNAVAILABLE;
        }
        if (r == -ETIMEDOUT) {
                fprintf(stderr, "hubctl: method-router did not answer\n");
                return HUBCTL_EXIT_UNAVAILABLE;
        }
        if (r == -EACCES || r == -EPERM) {
                if (error)
                        fprintf(stderr, "hubctl: %s\n", error);
                else
                        fprintf(stderr, "hubctl: permission denied: cannot connect to method-router at %s\n", socket);
                return HUBCTL_EXIT_DENIED;
        }
        /* The daemon's own words: a refused request (a bad method name, timeout, target). */
        fprintf(stderr, "hubctl: %s\n", error ?: strerror(-r));
        return HUBCTL_EXIT_CALL;
}

static int print_result(json_t *result, bool json) {
        json_t *payload = NULL;
        const char *code = NULL, *message = NULL;
        int http_status = 0, status = 0;

        if (json_unpack(result, "{s:i}", "httpStatus", &http_status) < 0) {
                fprintf(stderr, "hubctl: method-router sent an unexpected result\n");
                return HUBCTL_EXIT_DAEMON;
        }
        if (http_status != 200) {
                (void) json_unpack(result, "{s?s, s?s}", "errorCode", &code, "message", &message);
                if (json) {
                        json_auto_t *out = json_pack("{s:i, s:s?, s:s?}", "httpStatus", http_status, "errorCode", code,
                                                     "message", message);
                        if (out) {
                                (void) json_dumpf(out, stdout, JSON_INDENT(2));
                                fputc('\n', stdout);
                        }
                }
                fprintf(stderr, "hubctl: the call failed (%d %s): %s\n", http_status, code ?: "?", message ?: "");
                return HUBCTL_EXIT_CALL;
        }
        if (json_unpack(result, "{s:i, s:o}", "status", &status, "payload", &payload) < 0) {
                fprintf(stderr, "hubctl: method-router sent an unexpected result\n");
                return HUBCTL_EXIT_DAEMON;
        }
        if (json) {
                json_auto_t *out = json_pack("{s:i, s:O}", "status", status, "payload", payload);
                if (!out || json_dumpf(out, stdout, JSON_INDENT(2)) < 0)
                        return HUBCTL_EXIT_DAEMON;
                fputc('\n', stdout);
                return 0;
        }
        _cleanup_free_ char *text = json_dumps(payload, JSON_ENCODE_ANY | JSON_INDENT(2));
        printf("Status:  %d\nPayload: %s\n", status, text ?: "?");
        return 0;
}

int hubctl_methods(const char *socket, bool json, int argc, char *argv[]) {
        enum { ARG_PAYLOAD = 0x100, ARG_TIMEOUT, ARG_CONNECT_TIMEOUT };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "payload", required_argument, NULL, ARG_PAYLOAD },
                { "timeout", required_argument, NULL, ARG_TIMEOUT },
                { "connect-timeout", required_argument, NULL, ARG_CONNECT_TIMEOUT },
                {},
        };
        _cleanup_free_ char *body = NULL, *error = NULL, *id = NULL;
        const char *payload = NULL;
        long timeout = METHOD_TIMEOUT_DEFAULT_SEC, connect_timeout = 0;
        json_auto_t *started = NULL;
        json_int_t call;
        int o, r;

        optind = 0; /* GNU getopt: start over on the subcommand's own arguments */
        while ((o = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (o) {
                case 'h':
                        methods_help();
                        return 0;
                case ARG_PAYLOAD:
                        payload = optarg;
                        break;
                case ARG_TIMEOUT:
                        if (parse_seconds(optarg, "--timeout", &timeout) < 0)
                                return HUBCTL_EXIT_USAGE;
                        break;
                case ARG_CONNECT_TIMEOUT:
                        if (parse_seconds(optarg, "--connect-timeout", &connect_timeout) < 0)
                                return HUBCTL_EXIT_USAGE;
                        break;
                default:
                        return HUBCTL_EXIT_USAGE;
                }
        /* argv[0] is "methods" */
        if (argc - optind != 3 || strcmp(argv[optind], "invoke") != 0) {
                fprintf(stderr, "hubctl: usage: methods invoke TARGET METHOD [--payload JSON] [--timeout S]\n");
                return HUBCTL_EXIT_USAGE;
        }
        if (build_body(argv[optind + 2], payload, timeout, connect_timeout, &body) < 0)
                return HUBCTL_EXIT_USAGE;

        r = daemon_query_with(socket, "invoke", argv[optind + 1], body, HUBCTL_TIMEOUT_USEC, &started, &error);
        if (r < 0)
                return query_failed(r, error, socket);
        if (json_unpack(started, "{s:I}", "call", &call) < 0 || asprintf(&id, "%lld", (long long) call) < 0) {
                fprintf(stderr, "hubctl: method-router sent an unexpected reply to invoke\n");
                return HUBCTL_EXIT_DAEMON;
        }

        uint64_t deadline = now_usec() + (uint64_t) (timeout + connect_timeout) * 1000000u + POLL_GRACE_USEC;
        for (;;) {
                json_auto_t *result = NULL;
                int done = 0;

                error = (free(error), NULL);
                r = daemon_query_with(socket, "result", NULL, id, HUBCTL_TIMEOUT_USEC, &result, &error);
                if (r < 0)
                        return query_failed(r, error, socket);
                if (json_unpack(result, "{s:b}", "done", &done) < 0) {
                        fprintf(stderr, "hubctl: method-router sent an unexpected result\n");
                        return HUBCTL_EXIT_DAEMON;
                }
                if (done)
                        return print_result(result, json);
                if (now_usec() > deadline) {
                        fprintf(stderr, "hubctl: method-router did not end the call in time\n");
                        return HUBCTL_EXIT_UNAVAILABLE;
                }
                (void) nanosleep(&(struct timespec){ .tv_nsec = POLL_INTERVAL_NSEC }, NULL);
        }
}
